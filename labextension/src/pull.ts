/**
 * The state of one pull, built from the messages of the pull websocket:
 * the same `events.Progress` events the CLI draws its bars from.
 */

import { IImage } from './format';

export interface IProgressEvent {
  kind: 'layer' | 'status';
  id: string;
  status: string;
  current: number;
  total: number | null;
  message: string;
  time: number;
}

export type PullMessage =
  | ({ type: 'progress' } & IProgressEvent)
  | { type: 'done'; image: IImage }
  | { type: 'error'; message: string; status: number };

export interface ILayerProgress {
  id: string;
  status: string;
  current: number;
  total: number | null;
  message: string;
}

/** Layer states in which no more bytes will come. */
const SETTLED = new Set(['done', 'exists', 'error']);

export class PullProgress {
  constructor(readonly reference: string) {}

  state: 'pulling' | 'done' | 'error' = 'pulling';
  /** The last whole-pull status line ("Digest: sha256:…"). */
  message = '';
  error = '';
  image: IImage | null = null;
  private _layers = new Map<string, ILayerProgress>();

  /** Layers in the order the registry listed them. */
  get layers(): ILayerProgress[] {
    return [...this._layers.values()];
  }

  apply(message: PullMessage): void {
    switch (message.type) {
      case 'progress':
        if (message.kind === 'layer') {
          this._layers.set(message.id, {
            id: message.id,
            status: message.status,
            current: message.current,
            total: message.total,
            message: message.message
          });
        } else {
          this.message = message.message || message.status;
        }
        break;
      case 'done':
        this.state = 'done';
        this.image = message.image;
        break;
      case 'error':
        this.state = 'error';
        this.error = message.message;
        break;
    }
  }

  /** The socket closed: without a done or error message, the pull was cut off. */
  closed(): void {
    if (this.state === 'pulling') {
      this.state = 'error';
      this.error = `the connection to the server closed while pulling ${this.reference}`;
    }
  }

  /** Bytes received over all layers, and the bytes announced (0 while unknown). */
  get bytes(): { current: number; total: number } {
    let current = 0;
    let total = 0;
    for (const layer of this._layers.values()) {
      current += layer.current;
      total += layer.total ?? 0;
    }
    return { current, total };
  }

  /** How far the pull is, 0–1: settled layers count in full. */
  get fraction(): number {
    if (this.state === 'done') {
      return 1;
    }
    const layers = this.layers;
    if (!layers.length) {
      return 0;
    }
    return layers.reduce((sum, layer) => sum + layerFraction(layer), 0) / layers.length;
  }
}

/** A layer's fraction, 0–1, for its bar. */
export function layerFraction(layer: ILayerProgress): number {
  if (SETTLED.has(layer.status)) {
    return 1;
  }
  return layer.total ? Math.min(1, layer.current / layer.total) : 0;
}
