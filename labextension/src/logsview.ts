/**
 * A main-area tab following a container's output over the logs websocket:
 * the last lines first, then new ones as they come, stderr told apart,
 * redrawn at most once a frame and bounded by a LogBuffer.
 */

import { MainAreaWidget } from '@jupyterlab/apputils';
import { refreshIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { containerIcon } from './panel';
import { ILogEntry, LogBuffer } from './logbuffer';
import { ISocket, ITransport, pathOf } from './model';

/** Lines fetched from the past when a tab opens. */
export const LOG_TAIL = 1000;

type LogMessage = ({ type: 'log' } & ILogEntry) | { type: 'error'; message: string; status: number };

export class LogsView extends Widget {
  constructor(
    readonly transport: ITransport,
    readonly containerId: string,
    readonly name: string
  ) {
    super();
    this.addClass('jp-ContainerLogs');
    this._status = document.createElement('div');
    this._status.className = 'jp-ContainerLogs-status';
    this._lines = document.createElement('pre');
    this._lines.className = 'jp-ContainerLogs-lines';
    this.node.append(this._status, this._lines);
    this.connect();
  }

  /** (Re)open the stream: after a restart, the output of the new run. */
  connect(): void {
    this._socket?.close();
    this._buffer.clear();
    this.scheduleRender();
    this.setStatus(`Following ${this.name}…`);
    const socket = this.transport.socket(`containers/${pathOf(this.containerId)}/logs`, {
      follow: 'true',
      tail: String(LOG_TAIL)
    });
    let failure = '';
    socket.onmessage = event => {
      const message = JSON.parse(String(event.data)) as LogMessage;
      if (message.type === 'log') {
        this._buffer.push(message);
        this.scheduleRender();
      } else {
        failure = message.message;
      }
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this.setStatus(failure || `${this.name} is not running: the log ends here. Reload to follow it again.`);
      }
    };
    this._socket = socket;
  }

  dispose(): void {
    this._socket?.close();
    this._socket = null;
    if (this._frame) {
      cancelAnimationFrame(this._frame);
    }
    super.dispose();
  }

  private setStatus(text: string): void {
    this._status.textContent = text;
  }

  private scheduleRender(): void {
    if (!this._frame) {
      this._frame = requestAnimationFrame(() => {
        this._frame = 0;
        this.render();
      });
    }
  }

  private render(): void {
    const pre = this._lines;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const { removeFromTop, append } = this._buffer.update();
    for (let i = 0; i < removeFromTop && pre.firstChild; i++) {
      pre.removeChild(pre.firstChild);
    }
    const fragment = document.createDocumentFragment();
    for (const entry of append) {
      const line = document.createElement('span');
      line.className = `jp-ContainerLogs-${entry.stream}`;
      line.textContent = entry.data.endsWith('\n') ? entry.data : `${entry.data}\n`;
      line.title = entry.time;
      fragment.appendChild(line);
    }
    pre.appendChild(fragment);
    if (atBottom) {
      pre.scrollTop = pre.scrollHeight;
    }
  }

  private _buffer = new LogBuffer();
  private _socket: ISocket | null = null;
  private _frame = 0;
  private _status: HTMLDivElement;
  private _lines: HTMLPreElement;
}

/** The logs tab of a container, with a button to follow it again. */
export function createLogsTab(transport: ITransport, containerId: string, name: string): MainAreaWidget<LogsView> {
  const content = new LogsView(transport, containerId, name);
  const widget = new MainAreaWidget({ content });
  widget.id = `jupyter-containers-logs-${containerId}`;
  widget.title.label = `Logs: ${name}`;
  widget.title.icon = containerIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'reload',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: `Follow the logs of ${name} again`,
      onClick: () => content.connect()
    })
  );
  return widget;
}
