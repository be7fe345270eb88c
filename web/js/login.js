import { api, onSubmit, show } from "./api.js";

const passwordForm = document.getElementById("password-form");
const codeForm = document.getElementById("code-form");
const codeInput = document.getElementById("code");
let kind = "totp";

onSubmit(passwordForm, async (data) => {
  const result = await api("/api/login", { username: data.get("username"), password: data.get("password") });
  if (result.next === "enrol") {
    location.assign("/enrol");
    return;
  }
  show(passwordForm, false);
  show(codeForm);
  codeInput.focus();
});

document.getElementById("use-recovery").addEventListener("click", (event) => {
  kind = "recovery";
  document.getElementById("code-label").textContent = "One of your recovery codes";
  codeInput.removeAttribute("inputmode");
  codeInput.value = "";
  show(event.target, false);
  codeInput.focus();
});

onSubmit(codeForm, async (data) => {
  const result = await api("/api/login/code", { code: data.get("code"), kind });
  location.assign(result.next);
});
