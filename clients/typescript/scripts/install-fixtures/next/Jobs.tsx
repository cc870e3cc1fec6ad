'use client';
import { useState } from 'react';
import { NosyntaskClient, NosyntaskProvider, useTaskRunner, useWorkflow } from '@nosyntask/client';

const client = new NosyntaskClient({ baseUrl: '', getToken: () => null });

function Progress({ jobId }: { jobId: number | null }) {
  const { job } = useWorkflow(jobId, { stream: true });
  return <span>{job ? `${job.status} ${job.progress}%` : 'idle'}</span>;
}

function Runner({ projectId, onStarted }: { projectId: number; onStarted: (id: number) => void }) {
  const { runTask, isRunning } = useTaskRunner({ projectId });
  return (
    <button
      disabled={isRunning}
      onClick={() => void runTask('views', 'character_views_generation', { characterName: '张三' }).then(onStarted)}
    >
      Generate views
    </button>
  );
}

export function Jobs({ projectId }: { projectId: number }) {
  const [jobId, setJobId] = useState<number | null>(null);
  return (
    <NosyntaskProvider client={client}>
      <Runner projectId={projectId} onStarted={setJobId} />
      <Progress jobId={jobId} />
    </NosyntaskProvider>
  );
}
