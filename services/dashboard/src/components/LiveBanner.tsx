import { useEffect, useRef, useState } from 'preact/hooks';
import { useLiveStatus } from '../hooks.js';

/**
 * Tells when the live connection drops (and that what is shown may be stale) and when it is back;
 * announced to screen readers through a live region.
 */
export function LiveBanner() {
  const status = useLiveStatus();
  const [restored, setRestored] = useState(false);
  const wasLost = useRef(false);
  useEffect(() => {
    if (status === 'lost') {
      wasLost.current = true;
      setRestored(false);
    } else if (status === 'live' && wasLost.current) {
      wasLost.current = false;
      setRestored(true);
      const timer = setTimeout(() => setRestored(false), 6_000);
      return () => clearTimeout(timer);
    }
  }, [status]);
  return (
    <div role="status" aria-live="polite" class="banner-slot">
      {status === 'lost' && (
        <p class="banner banner-lost" data-live="lost">
          Live connection lost. Reconnecting… what you see may be out of date.
        </p>
      )}
      {status === 'live' && restored && (
        <p class="banner banner-back" data-live="restored">
          Live connection restored: updates resumed.
        </p>
      )}
    </div>
  );
}
