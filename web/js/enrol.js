import { api, onSubmit, setCsrf, show } from "./api.js";

const form = document.getElementById("enrol-form");

async function load() {
  try {
    const details = await api("/api/enrol");
    setCsrf(details.csrf);
    document.getElementById("qr").src = details.qr;
    document.getElementById("secret").textContent = details.secret.replace(/(.{4})/g, "$1 ").trim();
  } catch (error) {
    form.querySelector(".error").textContent = error.message;
  }
}

onSubmit(form, async (data) => {
  const result = await api("/api/enrol", { code: data.get("code") });
  const list = document.getElementById("recovery-codes");
  for (const code of result.recovery_codes) {
    const item = document.createElement("li");
    item.textContent = code;
    list.append(item);
  }
  show(document.getElementById("enrol-step"), false);
  show(document.getElementById("codes-step"));
});

load();
