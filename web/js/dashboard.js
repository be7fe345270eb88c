import { api, setCsrf, show } from "./api.js";

const errorBox = document.getElementById("dashboard-error");

async function load() {
  const me = await api("/api/me");
  setCsrf(me.csrf);
  document.getElementById("who").textContent = me.name;
  show(document.getElementById("admin"), me.is_admin);
  if (me.recovery_codes_left < 3) {
    const warning = document.getElementById("codes-warning");
    warning.textContent = `Only ${me.recovery_codes_left} recovery codes left. Ask your admin to reset your two-step sign-in.`;
    show(warning);
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    const result = await api("/api/logout", {});
    location.assign(result.next);
  } catch (error) {
    errorBox.textContent = error.message;
  }
});

document.getElementById("invite").addEventListener("click", async () => {
  try {
    const result = await api("/api/setup-links", { admin: false });
    const box = document.getElementById("invite-link");
    box.textContent = result.url;
    show(box);
  } catch (error) {
    errorBox.textContent = error.message;
  }
});

load().catch((error) => {
  if (error.status === 401) location.assign("/login");
  else errorBox.textContent = error.message;
});
