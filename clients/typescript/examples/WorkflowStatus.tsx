import { useState } from 'react';
import { consumeWorkflow, useWorkflow } from '@nosyntask/client';

export const MyComponent = ({ initialJobId = null }: { initialJobId?: number | null }) => {
  const [jobId, setJobId] = useState<number | null>(initialJobId);

  // Poll the job (every 2 s by default; `stream: true` follows the event stream instead).
  const { job, isRunning, isCompleted, isFailed } = useWorkflow(jobId, {
    onCompleted: async (completedJob) => {
      console.log('completed:', completedJob);

      // The result of the (first) step.
      const task = completedJob.tasks?.[0];
      const result = task?.result_data;
      if (result) {
        console.log('front view:', result.frontViewUrl);
      }

      // Mark the job as handled so it leaves getActiveWorkflows.
      await consumeWorkflow(completedJob.id);

      // Stop polling.
      setJobId(null);
    },
    onFailed: async (failedJob) => {
      console.error('failed:', failedJob);
      alert('failed: ' + failedJob.error_message);
      await consumeWorkflow(failedJob.id);
      setJobId(null);
    },
  });

  return (
    <div>
      {isRunning && <p>Generating... {job?.tasks?.[0]?.progress || 0}%</p>}
      {isCompleted && <p>Done!</p>}
      {isFailed && <p>Failed!</p>}
    </div>
  );
};
