// The one way pages talk to /api/: JSON both ways, the CSRF token on every change,
// and errors turned into the sentence the server chose for people to read.

let csrfToken = "";

export function setCsrf(token) {
  csrfToken = token;
}

export async function api(path, body) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = csrfToken;
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) {
    const error = new Error(data.error || `The server answered ${response.status}.`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

// Run `handler` on submit with the button disabled, and show any error in the form's .error element.
export function onSubmit(form, handler) {
  const button = form.querySelector("button[type=submit]");
  const errorBox = form.querySelector(".error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (errorBox) errorBox.textContent = "";
    if (button) button.disabled = true;
    try {
      await handler(new FormData(form));
    } catch (error) {
      if (errorBox) errorBox.textContent = error.message;
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export function show(element, visible = true) {
  element.classList.toggle("hidden", !visible);
}
