// The README's examples are the files in examples/ (checked by tsc, and textually by readme.test.ts);
// here a few of them run against the real server as an application would use them.
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import { getActiveWorkflows, getWorkflowStatus, startWorkflow } from '../src/index';
import { CharacterModal } from '../examples/CharacterViews';
import { ExtractionPanel } from '../examples/Extraction';
import { FrameGenerator } from '../examples/TaskRunner';
import { MyComponent } from '../examples/WorkflowStatus';
import { asNewUser, eventually } from './helpers';

const UNTIL_DONE = { timeout: 20_000 };

describe('README examples', () => {
  it('useWorkflow: shows progress, then consumes the completed job', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'example' });
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    render(<MyComponent initialJobId={jobId} />);
    await eventually(async () => (await getWorkflowStatus(jobId)).is_consumed);
    expect(log).toHaveBeenCalledWith('completed:', expect.objectContaining({ id: jobId }));
    log.mockRestore();
  });

  it('useTaskRunner: generates frames for a scene and clears the finished task', async () => {
    const { projectId } = await asNewUser();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    render(<FrameGenerator currentProjectId={projectId} sceneId={7} />);
    fireEvent.click(screen.getByText('Generate frames'));
    await waitFor(() => expect(screen.getByText(/pending|running|completed/)).toBeTruthy(), UNTIL_DONE);
    await waitFor(() => expect(log).toHaveBeenCalledWith('done:', 'img_7', expect.anything()), UNTIL_DONE);
    await waitFor(() => expect(screen.queryByText(/pending|running|completed/)).toBeNull(), UNTIL_DONE);
    log.mockRestore();
  });

  it('useCharacterViewsGeneration: reloads the characters when the views are done', async () => {
    const { projectId } = await asNewUser();
    const loadCharacters = vi.fn();
    render(
      <CharacterModal
        currentProjectId={projectId}
        selectedCharacter={{ id: 3, name: '张三', appearance: 'tall, black hair' }}
        isModalOpen
        loadCharacters={loadCharacters}
      />,
    );
    fireEvent.click(screen.getByText('Generate three views'));
    await waitFor(() => expect(loadCharacters).toHaveBeenCalledTimes(1), UNTIL_DONE);
    await eventually(async () => (await getActiveWorkflows(projectId)).jobs.length === 0);
  });

  it('extraction hooks: extract characters and scenes of a script', async () => {
    const { projectId } = await asNewUser();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const scenes = [{ order: 1, description: 'Ada meets Bob in a rainy train station.', characters: ['Ada', 'Bob'] }];
    render(<ExtractionPanel currentProjectId={projectId} currentScriptId={9} scenes={scenes} />);
    fireEvent.click(screen.getByText('Extract characters'));
    fireEvent.click(screen.getByText('Extract scenes'));
    await waitFor(() => {
      expect(log).toHaveBeenCalledWith('characters extracted');
      expect(log).toHaveBeenCalledWith('scenes extracted');
    }, UNTIL_DONE);
    log.mockRestore();
  });
});
