import { configure } from '@nosyntask/client';

// Once, at application start: where the server is and where the user's JWT comes from.
configure({
  baseUrl: 'http://localhost:8080',
  getToken: () => localStorage.getItem('token'),
});
