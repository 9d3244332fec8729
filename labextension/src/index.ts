/**
 * jupyter-containers' JupyterLab extension: the Containers sidebar, logs
 * tabs, and a command for every action (in the palette, and behind the
 * panel's buttons). Errors are shown as notifications.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification, showDialog, Dialog } from '@jupyterlab/apputils';

import { containerName } from './format';
import { createLogsTab } from './logsview';
import { ContainersModel } from './model';
import { CommandIDs, containerIcon, ContainersPanel } from './panel';
import { serverTransport } from './transport';

const CATEGORY = 'Containers';

/** Run an action; its failure becomes a notification instead of a console error. */
async function notifying<T>(action: () => Promise<T>): Promise<T | undefined> {
  try {
    return await action();
  } catch (error) {
    Notification.error((error as Error).message ?? String(error), { autoClose: 8000 });
    return undefined;
  }
}

/** The container an action is for: its `id` argument, or one the user picks. */
async function chooseContainer(
  model: ContainersModel,
  args: { id?: unknown },
  title: string,
  states?: string[]
): Promise<{ id: string; name: string } | null> {
  if (typeof args.id === 'string') {
    const known = model.find(args.id);
    return { id: args.id, name: known ? containerName(known) : args.id };
  }
  await model.refresh();
  const candidates = model.containers.filter(c => !states || states.includes(c.State.Status));
  if (!candidates.length) {
    Notification.info(`No ${states ? states.join(' or ') + ' ' : ''}containers`, { autoClose: 4000 });
    return null;
  }
  const names = candidates.map(containerName);
  const choice = await InputDialog.getItem({ title, items: names });
  if (!choice.button.accept || choice.value === null) {
    return null;
  }
  const container = candidates[names.indexOf(choice.value)];
  return { id: container.Id, name: choice.value };
}

async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-containers:plugin',
  description: 'Containers and images in the sidebar, container logs in tabs, services through the Jupyter proxy.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, restorer: ILayoutRestorer | null) => {
    const model = new ContainersModel(serverTransport());
    const panel = new ContainersPanel(model, app.commands);
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'jupyter-containers');
    const { commands } = app;

    commands.addCommand(CommandIDs.showPanel, {
      label: 'Show Containers Panel',
      icon: containerIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Containers',
      execute: () => notifying(() => model.refresh())
    });
    commands.addCommand(CommandIDs.logs, {
      label: 'Show Container Logs…',
      execute: async args => {
        const target = await notifying(() => chooseContainer(model, args, 'Logs of container'));
        if (!target) {
          return;
        }
        const tabId = `jupyter-containers-logs-${target.id}`;
        for (const widget of app.shell.widgets('main')) {
          if (widget.id === tabId) {
            app.shell.activateById(tabId);
            return;
          }
        }
        app.shell.add(createLogsTab(model.transport, target.id, target.name), 'main');
        app.shell.activateById(tabId);
      }
    });
    const containerAction = (id: string, label: string, act: (id: string) => Promise<void>, states?: string[]) =>
      commands.addCommand(id, {
        label: `${label} Container…`,
        execute: async args => {
          const target = await notifying(() => chooseContainer(model, args, `${label} container`, states));
          if (target) {
            await notifying(() => act(target.id));
          }
        }
      });
    containerAction(CommandIDs.stop, 'Stop', id => model.stop(id), ['running', 'paused', 'restarting']);
    containerAction(CommandIDs.restart, 'Restart', id => model.restart(id));
    commands.addCommand(CommandIDs.remove, {
      label: 'Remove Container…',
      execute: async args => {
        const target = await notifying(() => chooseContainer(model, args, 'Remove container'));
        if (!target) {
          return;
        }
        const running = model.find(target.id)?.State.Status === 'running';
        const body = running
          ? `${target.name} is running: it will be killed, then removed with its files.`
          : `${target.name} will be removed with its files.`;
        if (await confirm('Remove container', body, 'Remove')) {
          await notifying(() => model.remove(target.id, running));
        }
      }
    });
    commands.addCommand(CommandIDs.pull, {
      label: 'Pull Image…',
      execute: async args => {
        let image = typeof args.image === 'string' ? args.image : '';
        if (!image) {
          const answer = await InputDialog.getText({ title: 'Pull image', placeholder: 'e.g. busybox:latest' });
          image = (answer.button.accept && answer.value?.trim()) || '';
        }
        if (!image) {
          return;
        }
        app.shell.activateById(panel.id);
        const progress = await model.pull(image);
        if (progress.state === 'done') {
          Notification.success(`Pulled ${image}`, { autoClose: 4000 });
        } else {
          Notification.error(progress.error, { autoClose: 8000 });
        }
      }
    });
    commands.addCommand(CommandIDs.removeImage, {
      label: 'Remove Image…',
      execute: async args => {
        let name = typeof args.name === 'string' ? args.name : '';
        if (!name) {
          await notifying(() => model.refresh());
          const names = model.images.flatMap(image => image.RepoTags ?? []);
          if (!names.length) {
            Notification.info('No tagged images', { autoClose: 4000 });
            return;
          }
          const choice = await InputDialog.getItem({ title: 'Remove image', items: names });
          name = (choice.button.accept && choice.value) || '';
        }
        if (name && (await confirm('Remove image', `${name} will be untagged, and deleted if nothing else uses it.`, 'Remove'))) {
          await notifying(() => model.removeImage(name));
        }
      }
    });

    if (palette) {
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category: CATEGORY });
      }
    }
  }
};

export default plugin;
