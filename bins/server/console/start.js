// Starting a workflow: a form drawn from the workflow's `paramsSchema`, with example params, and
// the server's 422 message shown next to the field it names.

import { ApiError } from './api.js';
import { h, message, replace } from './dom.js';
import { fieldsNamed, fieldsOf, initialText, parseValue } from './params.js';
import { SAMPLES } from './samples.js';

const PROJECT_KEY = 'nosyntask.console.project';

/**
 * @param {HTMLElement} view
 * @param {any} ctx
 * @param {URLSearchParams} query
 */
export function renderStart(view, ctx, query) {
  ctx.title('Start a workflow');
  const status = h('div', { class: 'form-status' });
  const heading = h('h1', { text: 'Start a workflow' });
  const lead = h('p', { class: 'lead' }, 'Pick a workflow, fill in its params (or use the example), and start it. You will see it run step by step.');
  replace(view, heading, lead, status);
  let models = [];
  Promise.all([ctx.types(), ctx.api.models().catch(() => ({ models: [] }))])
    .then(([types, modelList]) => {
      models = modelList.models || [];
      draw(types.workflows || []);
    })
    .catch((err) => replace(status, message('error', `Cannot load the workflow types: ${err.message}`)));

  /** @param {any[]} workflows */
  function draw(workflows) {
    if (workflows.length === 0) {
      replace(status, message('info', 'This server has no workflows registered.'));
      return;
    }
    const wanted = query.get('type');
    const select = h('select', { id: 'workflow-type', name: 'workflowType', required: true },
      workflows.map((wf) => h('option', { value: wf.type, selected: wf.type === wanted, text: `${wf.name} (${wf.type})` })));
    const stepsNote = h('p', { id: 'workflow-steps', class: 'hint' });
    const project = h('input', {
      id: 'project-id', name: 'projectId', type: 'number', min: 1, step: 1, inputmode: 'numeric', required: true,
      value: localStorage.getItem(PROJECT_KEY) || '1', 'aria-describedby': 'project-hint',
    });
    const key = h('input', { id: 'idempotency-key', name: 'idempotencyKey', type: 'text', autocomplete: 'off', 'aria-describedby': 'key-hint' });
    const paramsBox = h('fieldset', { class: 'params' });
    const example = h('button', { type: 'button', class: 'button-quiet', text: 'Fill in the example' });
    const submit = h('button', { type: 'submit', class: 'button-primary', text: 'Start workflow' });
    const formStatus = h('div', { class: 'form-status' });
    const form = h('form', { class: 'card start-form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'workflow-type', text: 'Workflow' }), select, stepsNote),
      h('div', { class: 'field' },
        requiredLabel('project-id', 'Project id'),
        project,
        h('p', { id: 'project-hint', class: 'hint', text: 'The NanoStory project the job belongs to.' })),
      paramsBox,
      h('details', { class: 'advanced' }, h('summary', { text: 'Advanced' }),
        h('div', { class: 'field' },
          h('label', { for: 'idempotency-key', text: 'Idempotency key' }),
          key,
          h('p', { id: 'key-hint', class: 'hint', text: 'Starting again with the same key within 24 hours returns the first job instead of a new one.' }))),
      formStatus,
      h('div', { class: 'actions' }, submit, example));
    replace(view, heading, lead, form);

    /** @type {{field: any, control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement}[]} */
    let controls = [];
    const current = () => workflows.find((wf) => wf.type === select.value) || workflows[0];

    function drawParams() {
      const wf = current();
      const steps = wf.steps.map((s) => `${s.type} → ${s.targetType}`).join(', ');
      stepsNote.textContent = `${wf.totalSteps} step${wf.totalSteps === 1 ? '' : 's'}: ${steps}`;
      const { fields, anyOf } = fieldsOf(wf.paramsSchema);
      controls = fields.map((field) => ({ field, control: controlFor(field, models) }));
      replace(paramsBox,
        h('legend', { text: `Params of ${wf.type}` }),
        h('p', { class: 'hint' }, 'Fields marked ', h('span', { class: 'required-mark', 'aria-hidden': 'true', text: '*' }), ' are required.'),
        anyOf.map((group) => h('p', { class: 'hint any-of', text: `Give at least one of: ${group.join(', ')}.` })),
        controls.map(({ field, control }) => fieldBlock(field, control)),
        models.length ? modelList(models) : null);
      example.hidden = !SAMPLES[wf.type];
      project.removeAttribute('aria-invalid');
      replace(formStatus);
    }

    function fill(values) {
      for (const { field, control } of controls) {
        if (!(field.name in values)) continue;
        const value = values[field.name];
        if (control instanceof HTMLInputElement && control.type === 'checkbox') control.checked = Boolean(value);
        else control.value = field.control === 'json' ? JSON.stringify(value, null, 2) : String(value);
      }
    }

    select.addEventListener('change', () => {
      drawParams();
      history.replaceState(null, '', `#/start?type=${encodeURIComponent(select.value)}`);
    });
    example.addEventListener('click', () => {
      const sample = SAMPLES[current().type];
      if (sample) fill(sample);
      replace(formStatus, message('info', 'Example params filled in.'));
    });

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors();
      const params = {};
      const errors = [];
      for (const { field, control } of controls) {
        const raw = control instanceof HTMLInputElement && control.type === 'checkbox' ? control.checked : control.value;
        const parsed = parseValue(field, raw);
        if (parsed.error) errors.push({ name: field.name, text: parsed.error });
        else if (parsed.value !== undefined) params[field.name] = parsed.value;
      }
      const projectId = Number(project.value);
      if (!Number.isInteger(projectId) || projectId <= 0) errors.unshift({ name: 'projectId', text: 'projectId: must be a positive integer' });
      if (errors.length) {
        showErrors('Some params need fixing.', errors);
        return;
      }
      localStorage.setItem(PROJECT_KEY, String(projectId));
      const body = { workflowType: current().type, projectId, params };
      if (key.value.trim()) body.idempotencyKey = key.value.trim();
      submit.disabled = true;
      replace(formStatus, message('info', 'Starting…'));
      try {
        const started = await ctx.api.start(body);
        ctx.flash(started.deduplicated ? 'info' : 'success', started.deduplicated
          ? `An identical job was already started: this is job ${started.jobId}.`
          : `Started job ${started.jobId}.`);
        ctx.navigate(`#/jobs/${started.jobId}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 422) {
          const names = [...controls.map((c) => c.field.name), 'projectId'];
          const detail = err.message.replace(/^invalid params:\s*/, '');
          showErrors(`The server refused the params: ${err.message}`,
            fieldsNamed(err.message, names).map((name) => ({ name, text: detail })));
        } else if (err instanceof ApiError && err.status === 429) {
          // The server's message says what the limit is; the header says how long to wait.
          const message = err.message.charAt(0).toUpperCase() + err.message.slice(1);
          const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
          showErrors(`${message}.${wait}`, []);
        } else {
          showErrors(`Cannot start the workflow: ${err.message}`, []);
        }
      } finally {
        submit.disabled = false;
      }
    });

    const controlNamed = (name) => (name === 'projectId' ? project : controls.find((c) => c.field.name === name)?.control);

    function clearErrors() {
      for (const control of [project, ...controls.map((c) => c.control)]) {
        control.removeAttribute('aria-invalid');
        const describedBy = (control.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.endsWith('-error'));
        control.setAttribute('aria-describedby', describedBy.join(' '));
      }
      for (const el of form.querySelectorAll('.field-error')) el.remove();
      replace(formStatus);
    }

    /** Shows `text` above the buttons and each error under its field, then focuses the first. */
    function showErrors(text, errors) {
      replace(formStatus, message('error', text));
      let first = null;
      for (const { name, text: detail } of errors) {
        const control = controlNamed(name);
        if (!control) continue;
        const errorId = `${control.id}-error`;
        control.setAttribute('aria-invalid', 'true');
        control.setAttribute('aria-describedby', `${control.getAttribute('aria-describedby') || ''} ${errorId}`.trim());
        control.insertAdjacentElement('afterend', h('p', { id: errorId, class: 'field-error', text: detail }));
        first = first || control;
      }
      if (first) first.focus();
    }

    drawParams();
  }
}

function requiredLabel(forId, text, required = true) {
  return h('label', { for: forId }, text,
    required ? h('span', { class: 'required-mark', 'aria-hidden': 'true', text: ' *' }) : null,
    required ? h('span', { class: 'visually-hidden', text: ' (required)' }) : null);
}

function controlFor(field, models) {
  const id = `param-${field.name}`;
  const common = { id, name: field.name, 'aria-describedby': `${id}-hint`, required: field.required };
  switch (field.control) {
    case 'select': {
      const values = field.enum || ['true', 'false'];
      const blank = !field.required && (field.default === undefined || field.default === null);
      return h('select', common,
        blank ? h('option', { value: '', text: '— not set —' }) : null,
        values.map((v) => h('option', { value: v, selected: String(field.default) === v, text: v })));
    }
    case 'checkbox':
      return h('input', { ...common, type: 'checkbox', checked: Boolean(field.default) });
    case 'json':
      return h('textarea', {
        ...common, rows: 4, spellcheck: 'false', class: 'mono',
        placeholder: field.type === 'array' ? '[ … ] (JSON)' : '{ … } (JSON)',
      }, initialText(field));
    case 'textarea':
      return h('textarea', { ...common, rows: field.maxLength && field.maxLength > 10000 ? 10 : 3, maxlength: field.maxLength ?? undefined }, initialText(field));
    default: {
      const numeric = field.type === 'integer' || field.type === 'number';
      const list = field.modelKind !== null && models.length ? `models-${field.modelKind || 'all'}` : undefined;
      return h('input', {
        ...common,
        type: numeric ? 'number' : 'text',
        step: field.type === 'integer' ? 1 : numeric ? 'any' : undefined,
        inputmode: field.type === 'integer' ? 'numeric' : undefined,
        min: field.minimum ?? undefined,
        max: field.maximum ?? undefined,
        maxlength: !numeric && field.maxLength ? field.maxLength : undefined,
        list,
        autocomplete: 'off',
        value: initialText(field),
        dataset: field.modelKind ? { modelKind: field.modelKind } : undefined,
      });
    }
  }
}

function fieldBlock(field, control) {
  const id = `param-${field.name}`;
  const facts = [
    field.type,
    field.default !== undefined ? `default ${JSON.stringify(field.default)}` : null,
    field.minimum !== null || field.maximum !== null ? `${field.minimum ?? '…'}–${field.maximum ?? '…'}` : null,
    field.oneOf ? 'one of a group' : null,
  ].filter(Boolean).join(' · ');
  const label = requiredLabel(id, field.name, field.required);
  const hint = h('p', { id: `${id}-hint`, class: 'hint' }, field.description, field.description ? ' ' : '', h('span', { class: 'muted', text: `(${facts})` }));
  if (field.control === 'checkbox') {
    return h('div', { class: 'field field-inline' }, control, label, hint);
  }
  return h('div', { class: `field field-${field.control}` }, label, control, hint);
}

/** Suggestions for `modelName`: the configured models, all and by kind. */
function modelList(models) {
  const list = (id, items) => h('datalist', { id }, items.map((m) => h('option', { value: m.name, text: `${m.name} (${m.kind})` })));
  return [
    list('models-all', models),
    ['text', 'image', 'video'].map((kind) => list(`models-${kind}`, models.filter((m) => m.kind === kind))),
  ];
}
