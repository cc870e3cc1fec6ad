// A Vite (react-ts) application using the packed @nosyntask/client: `tsc -b` and `vite build` must
// pass with the package installed from its tarball.
import { useState } from 'react';
import {
  ApiError,
  configure,
  NosyntaskClient,
  NosyntaskProvider,
  startWorkflow,
  useTaskRunner,
  useWorkflow,
  type WorkflowJob,
} from '@nosyntask/client';
import { getWorkflowStatus, getWorkflowTypes } from '@nosyntask/client/core';

configure({ baseUrl: 'http://localhost:8080', getToken: () => localStorage.getItem('token') });
const client = new NosyntaskClient({ baseUrl: 'http://localhost:8080' });

function Job({ jobId }: { jobId: number | null }) {
  const { job, isRunning } = useWorkflow(jobId, {
    onCompleted: (done: WorkflowJob) => console.log('completed', done.id),
  });
  return <p>{isRunning ? `running ${job?.progress ?? 0}%` : (job?.status ?? 'idle')}</p>;
}

function Runner({ projectId }: { projectId: number }) {
  const { tasks, runTask } = useTaskRunner({ projectId });
  return (
    <button onClick={() => void runTask('prompt', 'prompt_generate', { description: 'a lighthouse' })}>
      {tasks.prompt?.status ?? 'start'}
    </button>
  );
}

export default function App() {
  const [jobId, setJobId] = useState<number | null>(null);
  const start = async () => {
    try {
      const { jobId: id } = await startWorkflow('character_views_generation', 1, { characterName: '张三' });
      setJobId(id);
    } catch (error) {
      if (error instanceof ApiError) console.error(error.code, error.message);
    }
    await getWorkflowTypes();
  };
  // The per-workflow types reach consumers through the packed declarations.
  const typed = async (id: number) => {
    const job = await getWorkflowStatus<'character_views_generation'>(id);
    const front: string | undefined = job.tasks[0]?.result_data?.frontViewUrl;
    // @ts-expect-error -- an unknown workflow type does not compile
    await startWorkflow('no_such_workflow', 1, {});
    return front;
  };
  void typed;
  return (
    <NosyntaskProvider client={client}>
      <button onClick={() => void start()}>Generate views</button>
      <Job jobId={jobId} />
      <Runner projectId={1} />
    </NosyntaskProvider>
  );
}
