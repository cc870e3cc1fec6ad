// No next/font here: the check runs where only the npm registry is reachable.
import type { ReactNode } from 'react';

export const metadata = { title: 'nosyntask install check' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
