import { useState } from 'react';
import { startWorkflow } from '@nosyntask/client';

export function StartTask({ projectId }: { projectId: number }) {
  const [generatingJobId, setGeneratingJobId] = useState<number | null>(null);

  const handleStartTask = async () => {
    try {
      const { jobId } = await startWorkflow(
        'character_views_generation', // workflow type
        projectId, // project id
        {
          // the workflow's params
          characterId: 123,
          characterName: '张三',
          style: '动漫风格',
          modelName: 'FLUX.1',
        },
      );
      console.log('started, jobId:', jobId);
      setGeneratingJobId(jobId); // keep the jobId to poll it
    } catch (error) {
      console.error('could not start:', error);
    }
  };

  return (
    <button onClick={handleStartTask} disabled={generatingJobId !== null}>
      Generate views
    </button>
  );
}
