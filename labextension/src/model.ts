/**
 * The panel's model: the containers, images and resource usage the server
 * reports, refreshed on demand (the panel polls while it is visible), and
 * the actions on them. It talks to the server through a `ITransport`, so it
 * runs under test without JupyterLab.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { IContainer, IImage, IStats } from './format';
import { PullMessage, PullProgress } from './pull';

/** An error answer of the server: its status and one-line message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

/** What a websocket offers that the model uses. */
export interface ISocket {
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  close(): void;
}

export interface ITransport {
  /** A request to `{base_url}containers/api/{path}`; rejects with ApiError. */
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** A websocket to `{base_url}containers/api/{path}?{params}`. */
  socket(path: string, params?: Record<string, string>): ISocket;
  /** `{base_url}containers/proxy`, the base of service links. */
  readonly proxyBase: string;
}

/** Path segment(s) of a name: image names keep their slashes. */
export function pathOf(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

export class ContainersModel {
  constructor(readonly transport: ITransport) {}

  containers: IContainer[] = [];
  images: IImage[] = [];
  /** The latest resource sample of each running container, by ID. */
  stats = new Map<string, IStats>();
  /** Pulls started from this panel, newest last. */
  pulls: PullProgress[] = [];

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Why the last refresh failed; empty after a good one. */
  error = '';

  /**
   * Fetch the containers (all of them), images and the stats of running
   * ones. A failure is kept in `error` (the panel shows it) and rethrown.
   */
  async refresh(): Promise<void> {
    let containers: IContainer[];
    let images: IImage[];
    try {
      [containers, images] = await Promise.all([
        this.transport.request<IContainer[]>('GET', 'containers?all=true'),
        this.transport.request<IImage[]>('GET', 'images')
      ]);
    } catch (error) {
      this.error = `Cannot list containers: ${(error as Error).message}`;
      this._changed.emit();
      throw error;
    }
    this.error = '';
    // Stats are a nicety: without them the bars are simply not drawn.
    const samples = containers.some(c => c.State.Status === 'running')
      ? await this.transport.request<IStats[]>('GET', 'stats').catch(() => [] as IStats[])
      : [];
    this.containers = containers;
    this.images = images;
    this.stats = new Map(samples.map(sample => [sample.id, sample]));
    this._changed.emit();
  }

  find(id: string): IContainer | undefined {
    return this.containers.find(c => c.Id === id || c.Name.replace(/^\//, '') === id);
  }

  async stop(id: string): Promise<void> {
    await this.act('POST', `containers/${pathOf(id)}/stop`, {});
  }

  async restart(id: string): Promise<void> {
    await this.act('POST', `containers/${pathOf(id)}/restart`, {});
  }

  async remove(id: string, force = false): Promise<void> {
    await this.act('DELETE', `containers/${pathOf(id)}${force ? '?force=true' : ''}`);
  }

  async removeImage(name: string, force = false): Promise<void> {
    await this.act('DELETE', `images/${pathOf(name)}${force ? '?force=true' : ''}`);
  }

  /**
   * Pull `reference` over the pull websocket; resolves with the finished
   * progress (check its `state`), and refreshes the lists when done.
   */
  pull(reference: string): Promise<PullProgress> {
    const progress = new PullProgress(reference);
    this.pulls = [...this.pulls.filter(p => p.reference !== reference), progress];
    this._changed.emit();
    return new Promise(resolve => {
      const socket = this.transport.socket('pull', { image: reference });
      socket.onmessage = event => {
        progress.apply(JSON.parse(String(event.data)) as PullMessage);
        this._changed.emit();
      };
      socket.onclose = () => {
        progress.closed();
        this._changed.emit();
        resolve(progress);
        if (progress.state === 'done') {
          void this.refresh().catch(() => undefined);
        }
      };
    });
  }

  /** Forget a finished pull's progress. */
  dismissPull(progress: PullProgress): void {
    this.pulls = this.pulls.filter(p => p !== progress);
    this._changed.emit();
  }

  /** One action, then a refresh so the panel shows its effect at once. */
  private async act(method: string, path: string, body?: unknown): Promise<void> {
    await this.transport.request(method, path, body);
    await this.refresh();
  }

  private _changed = new Signal<this, void>(this);
}
