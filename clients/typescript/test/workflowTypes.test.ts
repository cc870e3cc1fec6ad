// The per-workflow types rest on two schema files (see scripts/generate-workflow-types.mjs); this
// checks both against the real server: the params schemas are exactly its catalogue, and a run of
// every workflow leaves, step by step, results of the shapes written down.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import {
  getWorkflowStatus,
  getWorkflowTypes,
  isTerminalStatus,
  startWorkflow,
  type WorkflowParams,
  type WorkflowType,
} from '../src/index';
import { asNewUser, eventually } from './helpers';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const paramsFile = join(root, 'schema', 'workflow-params.json');
const results = parse(readFileSync(join(root, 'schema', 'workflow-results.yaml'), 'utf8')) as {
  workflows: Record<string, string[]>;
  schemas: Record<string, Schema>;
};

interface Schema {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: Schema[];
  enum?: unknown[];
  $ref?: string;
}

/** The JSON Schema subset workflow-results.yaml uses; returns what does not match. */
function mismatches(value: unknown, schema: Schema, path: string): string[] {
  if (schema.$ref) return mismatches(value, results.schemas[schema.$ref.split('/').pop() as string] as Schema, path);
  const found: string[] = [];
  for (const part of schema.allOf ?? []) found.push(...mismatches(value, part, path));
  if (schema.enum && !schema.enum.includes(value)) found.push(`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual =
      value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    const ok = types.includes(actual) || (actual === 'integer' && types.includes('number'));
    if (!ok) return [...found, `${path}: ${actual} where the schema says ${types.join(' | ')}`];
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) found.push(`${path}.${key}: missing`);
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      if (key in object) found.push(...mismatches(object[key], property, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => found.push(...mismatches(item, schema.items as Schema, `${path}[${i}]`)));
  return found;
}

const SCRIPT = '第一场 山神庙 夜\n林冲推开破庙的门。\n林冲：这雪下得好大。';
const SHOTS = [
  { id: 1, prompt: '林冲推门', hasAction: true },
  { id: 2, description: '陆谦举着火把', hasAction: false },
];
// One start of each workflow with its required params, as docs/workflows.md shows them.
const STARTS: { [T in WorkflowType]: WorkflowParams<T> } = {
  storyboard_generation: { scriptContent: SCRIPT },
  character_extraction: { scriptContent: SCRIPT },
  scene_extraction: { scenes: [{ order: 1, description: '林冲推开庙门', location: '山神庙内' }] },
  character_views_generation: { characterName: '林冲', characterId: 3 },
  scene_image_generation: { sceneName: '山神庙内', sceneId: 5 },
  frame_generation: { prompt: '林冲翻身坐起' },
  scene_video: { prompt: '林冲翻身坐起', duration: 2 },
  prompt_generate: { description: 'a fox in the snow' },
  script_to_storyboard: { scriptContent: SCRIPT },
  script_only: { title: '风雪山神庙' },
  single_frame_generation: { description: '雪夜' },
  smart_parse: { apiDoc: 'POST https://api.example.com/v1/images {"prompt": "..."} returns {"url": "..."}' },
  camera_run_generation: { description: '林冲推门' },
  batch_frame_generation: { storyboards: SHOTS },
  batch_scene_video_generation: { storyboards: SHOTS },
};

describe('per-workflow types', () => {
  it("schema/workflow-params.json is the server's catalogue", async () => {
    await asNewUser();
    const { workflows } = await getWorkflowTypes();
    const live = Object.fromEntries(
      [...workflows].sort((a, b) => a.type.localeCompare(b.type)).map((w) => [w.type, w.paramsSchema]),
    );
    if (process.env.NOSYNTASK_UPDATE_SCHEMA) {
      writeFileSync(paramsFile, `${JSON.stringify(live, null, 2)}\n`);
    }
    const committed = JSON.parse(readFileSync(paramsFile, 'utf8')) as unknown;
    // On a difference: `NOSYNTASK_UPDATE_SCHEMA=1 npm test`, then `npm run generate`, then commit.
    expect(committed).toEqual(live);
    expect(Object.keys(results.workflows).sort()).toEqual(Object.keys(live).sort());
    expect(Object.keys(STARTS).sort()).toEqual(Object.keys(live).sort());
    for (const workflow of workflows) expect(results.workflows[workflow.type]).toHaveLength(workflow.totalSteps);
  });

  it('every workflow leaves results of the shapes in schema/workflow-results.yaml', async () => {
    const { projectId } = await asNewUser();
    const runs = await Promise.all(
      (Object.keys(STARTS) as WorkflowType[]).map(async (type) => {
        const { jobId } = await startWorkflow(type, projectId, STARTS[type] as never);
        const job = await eventually(async () => {
          const read = await getWorkflowStatus(jobId);
          return isTerminalStatus(read.status) ? read : null;
        }, 25_000);
        return { type, job };
      }),
    );
    const problems: string[] = [];
    for (const { type, job } of runs) {
      if (job.status !== 'completed') {
        problems.push(`${type}: ${job.status} (${job.error_message ?? ''})`);
        continue;
      }
      const steps = results.workflows[type] ?? [];
      // A fan-out step's items follow the steps in `tasks`; their results are in the step's.
      job.tasks.filter((task) => task.parent_task_id == null).forEach((task, index) => {
        problems.push(...mismatches(task.result_data, { $ref: `#/${steps[index]}` }, `${type}[${index}]`));
      });
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
