// Every hook and example renders under <StrictMode>, as in a development build of the frontend:
// effects mount, unmount and mount again, and callbacks must still fire once.
import { configure } from '@testing-library/react';

configure({ reactStrictMode: true });
