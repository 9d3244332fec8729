/**
 * The model's transport through JupyterLab's server connection: requests
 * carry the XSRF header and token exactly as JupyterLab's own do, and
 * websockets authenticate with the session cookie (or the token, when
 * JupyterLab appends it to its own websockets).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, ISocket, ITransport } from './model';

export function serverTransport(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): ITransport {
  return {
    proxyBase: URLExt.join(settings.baseUrl, 'containers', 'proxy'),

    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const url = URLExt.join(settings.baseUrl, 'containers', 'api', path);
      const init: RequestInit = { method };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
      }
      let response: Response;
      try {
        response = await ServerConnection.makeRequest(url, init, settings);
      } catch (error) {
        throw new ApiError(0, `cannot reach the Jupyter server: ${error}`);
      }
      const text = await response.text();
      let data: any = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        data = null;
      }
      if (!response.ok) {
        throw new ApiError(response.status, data?.message || `${response.status} ${response.statusText}`);
      }
      return data as T;
    },

    socket(path: string, params: Record<string, string> = {}): ISocket {
      const query = new URLSearchParams(params);
      if (settings.appendToken && settings.token) {
        query.set('token', settings.token);
      }
      const url = URLExt.join(settings.wsUrl, 'containers', 'api', path);
      const text = query.toString();
      return new settings.WebSocket(text ? `${url}?${text}` : url);
    }
  };
}
