// A route handler using the framework-free entry point on the server.
import { NosyntaskClient } from '@nosyntask/client/core';

export async function POST(request: Request) {
  const client = new NosyntaskClient({
    baseUrl: process.env.NOSYNTASK_URL ?? 'http://localhost:8080',
    getToken: () => request.headers.get('authorization')?.replace(/^Bearer /, '') ?? null,
  });
  const started = await client.startWorkflow('prompt_generate', 1, { description: 'from the server' });
  return Response.json(started);
}
