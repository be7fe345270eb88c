import { api, onSubmit, show } from "./api.js";

// The token arrives in the fragment so it never reaches a server log; take it and drop it from the bar.
const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
history.replaceState(null, "", location.pathname);

const form = document.getElementById("setup-form");
if (!token) {
  show(document.getElementById("missing-link"));
  show(form, false);
}

onSubmit(form, async (data) => {
  if (data.get("password") !== data.get("confirm")) {
    throw new Error("The two passwords are not the same.");
  }
  const result = await api("/api/setup", {
    token,
    name: data.get("name"),
    username: data.get("username"),
    password: data.get("password"),
  });
  location.assign(result.next);
});
