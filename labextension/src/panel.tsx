/**
 * The left sidebar panel: containers with their state, ports and resource
 * use, and images with a pull box. Buttons run the extension's commands,
 * so the panel and the command palette do exactly the same thing.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import {
  closeIcon,
  deleteIcon,
  LabIcon,
  listIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import {
  barPercent,
  containerName,
  humanSize,
  IContainer,
  IImage,
  imageName,
  imageTags,
  IStats,
  servicePorts,
  shortId,
  stateOf,
  usageText
} from './format';
import { ContainersModel } from './model';
import { layerFraction, PullProgress } from './pull';

/** How often the panel refreshes while it is visible. */
export const REFRESH_INTERVAL = 2000;

export const containerIcon = new LabIcon({
  name: 'jupyter-containers:container',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<path class="jp-icon3" fill="#616161" d="M21 7.5 12 2.5 3 7.5v9l9 5 9-5zM12 4.8l6.6 3.7L12 12.2 5.4 8.5zM5 ' +
    '10.2l6 3.3v6.6l-6-3.3zm8 9.9v-6.6l6-3.3v6.6z"/></svg>'
});

export const CommandIDs = {
  logs: 'containers:logs',
  stop: 'containers:stop',
  restart: 'containers:restart',
  remove: 'containers:remove',
  pull: 'containers:pull',
  removeImage: 'containers:remove-image',
  refresh: 'containers:refresh',
  showPanel: 'containers:show-panel'
};

export class ContainersPanel extends ReactWidget {
  constructor(
    readonly model: ContainersModel,
    readonly commands: CommandRegistry
  ) {
    super();
    this.id = 'jupyter-containers-panel';
    this.title.icon = containerIcon;
    this.title.caption = 'Containers';
    this.addClass('jp-ContainersPanel');
    // Polling, not a change feed: there is no daemon to push events, the
    // containers change in other processes (kernels, the CLI), and a list
    // is a few small files read per container. It stops while the panel is
    // hidden and backs off while the server fails.
    this.poll = new Poll({
      factory: () => this.model.refresh(),
      frequency: { interval: REFRESH_INTERVAL, backoff: true, max: 30 * 1000 },
      standby: () => !this.isVisible || 'when-hidden',
      name: 'jupyter-containers:refresh'
    });
  }

  readonly poll: Poll;

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.poll.refresh();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <PanelView model={this.model} commands={this.commands} />}
      </UseSignal>
    );
  }
}

interface IViewProps {
  model: ContainersModel;
  commands: CommandRegistry;
}

function PanelView({ model, commands }: IViewProps): JSX.Element {
  return (
    <div className="jp-Containers">
      <header className="jp-Containers-header">
        <h2>Containers</h2>
        <IconButton
          icon={refreshIcon}
          title="Refresh containers and images"
          onClick={() => void commands.execute(CommandIDs.refresh)}
        />
      </header>
      {model.error && <div className="jp-Containers-error">{model.error}</div>}
      <ul className="jp-Containers-list" aria-label="Containers">
        {model.containers.map(c => (
          <ContainerItem key={c.Id} container={c} stats={model.stats.get(c.Id)} proxyBase={model.transport.proxyBase} commands={commands} />
        ))}
        {!model.containers.length && <li className="jp-Containers-empty">No containers</li>}
      </ul>
      <header className="jp-Containers-header">
        <h2>Images</h2>
      </header>
      <PullBox commands={commands} />
      {model.pulls.map(p => (
        <PullView key={p.reference} progress={p} onDismiss={() => model.dismissPull(p)} />
      ))}
      <ul className="jp-Containers-list" aria-label="Images">
        {model.images.map(image => (
          <ImageItem key={image.Id} image={image} commands={commands} />
        ))}
        {!model.images.length && <li className="jp-Containers-empty">No images</li>}
      </ul>
    </div>
  );
}

function IconButton(props: { icon: LabIcon; title: string; onClick: () => void }): JSX.Element {
  return (
    <button className="jp-Containers-button" title={props.title} aria-label={props.title} onClick={props.onClick}>
      <props.icon.react tag="span" elementSize="small" />
    </button>
  );
}

const ACTIVE_STATES = new Set(['running', 'paused', 'restarting']);

function ContainerItem(props: {
  container: IContainer;
  stats?: IStats;
  proxyBase: string;
  commands: CommandRegistry;
}): JSX.Element {
  const { container, stats, commands } = props;
  const name = containerName(container);
  const state = stateOf(container);
  const args = { id: container.Id };
  const ports = servicePorts(container, props.proxyBase);
  return (
    <li className="jp-Containers-item" data-container-name={name} data-state={state}>
      <div className="jp-Containers-row">
        <span className={`jp-Containers-badge jp-mod-${state}` + (container.State.ExitCode ? ' jp-mod-failed' : '')}>
          {state}
        </span>
        <span className="jp-Containers-name" title={container.Id}>
          {name}
        </span>
        <span className="jp-Containers-actions">
          <IconButton icon={listIcon} title={`Logs of ${name}`} onClick={() => void commands.execute(CommandIDs.logs, args)} />
          <IconButton icon={refreshIcon} title={`Restart ${name}`} onClick={() => void commands.execute(CommandIDs.restart, args)} />
          {ACTIVE_STATES.has(state) && (
            <IconButton icon={stopIcon} title={`Stop ${name}`} onClick={() => void commands.execute(CommandIDs.stop, args)} />
          )}
          <IconButton icon={deleteIcon} title={`Remove ${name}`} onClick={() => void commands.execute(CommandIDs.remove, args)} />
        </span>
      </div>
      <div className="jp-Containers-detail">
        <span className="jp-Containers-image" title={imageName(container)}>
          {imageName(container)}
        </span>
        <span className="jp-Containers-status">{container.Status ?? state}</span>
      </div>
      {ports.length > 0 && state === 'running' && (
        <div className="jp-Containers-ports">
          {ports.map(port => (
            <a
              key={port.port}
              href={port.url}
              target="_blank"
              rel="noopener noreferrer"
              title={`Open port ${port.port} of ${name} through Jupyter` + (port.published.length ? ` (published on ${port.published.join(', ')})` : '')}
            >
              {port.port}/tcp
            </a>
          ))}
        </div>
      )}
      {stats && state === 'running' && (
        <div className="jp-Containers-usage">
          <Bar label="CPU" percent={stats.cpu_percent} text={usageText(stats).cpu} />
          <Bar label="MEM" percent={stats.memory_percent} text={usageText(stats).memory} />
        </div>
      )}
    </li>
  );
}

function Bar(props: { label: string; percent: number | null; text: string }): JSX.Element {
  return (
    <div className="jp-Containers-bar" title={`${props.label} ${props.text}`}>
      <span className="jp-Containers-barLabel">{props.label}</span>
      <span className="jp-Containers-barTrack">
        <span className="jp-Containers-barFill" style={{ width: `${barPercent(props.percent)}%` }} />
      </span>
      <span className="jp-Containers-barText">{props.text}</span>
    </div>
  );
}

function ImageItem(props: { image: IImage; commands: CommandRegistry }): JSX.Element {
  const { image, commands } = props;
  const tags = imageTags(image);
  const name = image.RepoTags?.[0] ?? image.Id;
  return (
    <li className="jp-Containers-item" data-image-id={image.Id}>
      <div className="jp-Containers-row">
        <span className="jp-Containers-name" title={`${tags.join('\n')}\n${image.Id}`}>
          {tags.join(', ')}
        </span>
        <span className="jp-Containers-actions">
          <IconButton
            icon={deleteIcon}
            title={`Remove image ${name}`}
            onClick={() => void commands.execute(CommandIDs.removeImage, { name })}
          />
        </span>
      </div>
      <div className="jp-Containers-detail">
        <span>{shortId(image.Id)}</span>
        <span>{humanSize(image.Size ?? 0)}</span>
        <span>{image.CreatedSince}</span>
      </div>
    </li>
  );
}

function PullBox(props: { commands: CommandRegistry }): JSX.Element {
  const [reference, setReference] = React.useState('');
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (reference.trim()) {
      void props.commands.execute(CommandIDs.pull, { image: reference.trim() });
      setReference('');
    }
  };
  return (
    <form className="jp-Containers-pull" onSubmit={submit}>
      <input
        className="jp-mod-styled"
        value={reference}
        placeholder="e.g. busybox:latest"
        aria-label="Image to pull"
        onChange={event => setReference(event.target.value)}
      />
      <button className="jp-mod-styled jp-mod-accept" type="submit">
        Pull
      </button>
    </form>
  );
}

function PullView(props: { progress: PullProgress; onDismiss: () => void }): JSX.Element {
  const { progress } = props;
  const bytes = progress.bytes;
  return (
    <div className="jp-Containers-pullProgress" data-reference={progress.reference} data-state={progress.state}>
      <div className="jp-Containers-row">
        <span className="jp-Containers-name" title={progress.reference}>
          {progress.reference}
        </span>
        <span className="jp-Containers-status">
          {progress.state === 'pulling' ? `${Math.round(progress.fraction * 100)}%` : progress.state}
        </span>
        {progress.state !== 'pulling' && (
          <IconButton icon={closeIcon} title={`Dismiss ${progress.reference}`} onClick={props.onDismiss} />
        )}
      </div>
      {progress.error && <div className="jp-Containers-error">{progress.error}</div>}
      {progress.layers.map(layer => (
        <div key={layer.id} className="jp-Containers-bar" data-layer={layer.id} data-status={layer.status}>
          <span className="jp-Containers-barLabel">{layer.id}</span>
          <span className="jp-Containers-barTrack">
            <span className="jp-Containers-barFill" style={{ width: `${layerFraction(layer) * 100}%` }} />
          </span>
          <span className="jp-Containers-barText">
            {layer.status}
            {layer.total ? ` ${humanSize(layer.current)}/${humanSize(layer.total)}` : ''}
          </span>
        </div>
      ))}
      {bytes.total > 0 && progress.state === 'pulling' && (
        <div className="jp-Containers-detail">
          {humanSize(bytes.current)} of {humanSize(bytes.total)}
        </div>
      )}
      {progress.message && <div className="jp-Containers-detail">{progress.message}</div>}
    </div>
  );
}
