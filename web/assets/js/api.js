// REST client: bearer token, JSON in and out, API errors as ApiError (status, code, message, field).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed (HTTP ${status})`);
    this.status = status;
    this.code = (body && body.error) || String(status);
    this.field = (body && body.field) || null;
    this.retryAfter = null;
  }
}

export class Api {
  constructor(config, session) {
    this.base = String(config.apiUrl || "").replace(/\/+$/, "");
    this.session = session;
  }

  /** `method path` with an optional JSON `body`; resolves to the parsed JSON (or text). */
  async request(method, path, { body, headers = {}, text = false } = {}) {
    const init = { method, headers: { Authorization: `Bearer ${await this.session.token()}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = init.headers["Content-Type"] || "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.base + path, init);
    } catch (cause) {
      const error = new ApiError(0, { error: "NetworkError", message: `the API did not answer (${cause.message})` });
      throw error;
    }
    if (!response.ok) {
      let payload = null;
      try {
        payload = await response.json();
      } catch {
        payload = null;
      }
      const error = new ApiError(response.status, payload);
      error.retryAfter = response.headers.get("Retry-After");
      throw error;
    }
    if (response.status === 204) return null;
    return text ? response.text() : response.json();
  }

  get(path, options) {
    return this.request("GET", path, options);
  }
  post(path, body, options = {}) {
    return this.request("POST", path, { ...options, body });
  }
  put(path, body, options = {}) {
    return this.request("PUT", path, { ...options, body });
  }
  delete(path, options) {
    return this.request("DELETE", path, options);
  }

  /** Every worker, following next_token: a fleet of up to 1000 in one request (the API's largest page). */
  async allWorkers() {
    const items = [];
    let token = null;
    do {
      const query = new URLSearchParams({ limit: "1000" });
      if (token) query.set("next_token", token);
      const page = await this.get(`/workers?${query}`);
      items.push(...page.items);
      token = page.next_token;
    } while (token);
    return items;
  }
}
