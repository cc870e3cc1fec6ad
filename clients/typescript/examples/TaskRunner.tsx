import { useEffect } from 'react';
import { useTaskRunner } from '@nosyntask/client';

export const FrameGenerator = ({ currentProjectId, sceneId }: { currentProjectId: number; sceneId: number }) => {
  const { tasks, runTask, clearTask, isRunning } = useTaskRunner({
    projectId: currentProjectId,
  });

  // Start a task under a key of your choosing.
  const handleGenerate = async (sceneId: number, prompt: string) => {
    try {
      await runTask(
        `img_${sceneId}`, // task key
        'frame_generation', // workflow type
        { prompt, width: 640, height: 360 }, // params
      );
    } catch (error) {
      console.error('generation failed:', error);
    }
  };

  // React to finished tasks.
  useEffect(() => {
    for (const [key, task] of Object.entries(tasks)) {
      if (task.status === 'completed' && task.result) {
        console.log('done:', key, task.result);
        clearTask(key); // forget the task
      }
    }
  }, [tasks]);

  const task = tasks[`img_${sceneId}`];
  return (
    <div>
      <button onClick={() => handleGenerate(sceneId, 'a beautiful scene')}>Generate frames</button>
      {task && <p>{task.status}: {task.progress}%</p>}
      {isRunning && <p>A task is running...</p>}
    </div>
  );
};
