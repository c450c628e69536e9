// The HTTP API client. The token lives in sessionStorage only (never localStorage or a
// cookie): it is gone when the tab closes, and it is sent only as a Bearer header.

const TOKEN_KEY = "deconflict.token";

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A 4xx/5xx answer: `problem` is the problem+json body (or a stand-in). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || null;
  }
}

/** Listeners called on any 401, so the page can return to the login form. */
const unauthorizedListeners = [];
export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

/**
 * Call the API. Returns the parsed JSON body; throws ApiError on 4xx/5xx and on network
 * failure (status 0).
 */
export async function api(method, path, body = undefined, { token = storedToken() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, {
      title: "Network error",
      code: "network",
      detail: `The service could not be reached (${err.message}).`,
    });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const problem =
      data && typeof data === "object"
        ? data
        : { status: response.status, title: response.statusText, detail: text.slice(0, 300) };
    if (response.status === 401 && token) {
      for (const fn of unauthorizedListeners) fn(problem);
    }
    throw new ApiError(response.status, problem);
  }
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body, opts);
export const del = (path, opts) => api("DELETE", path, undefined, opts);

/** Run `fn` over `items` with at most `limit` calls in flight. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
