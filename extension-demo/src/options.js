// Options page: edits the connection saved in IndexedDB, then asks the background to apply it
// (setCredentials, or a new tracker when the server URL changed).
import { loadConnection, loadSaved, save, clear } from './settings.js';
import { isEnabled, setEnabled } from './vendor/inhouse/client.js';

const form = document.getElementById('form');
const status = document.getElementById('status');

async function fill() {
  const conn = await loadConnection();
  form.baseUrl.value = conn.baseUrl;
  form.tokenId.value = conn.tokenId;
  form.tokenSecret.value = ''; // never shown back; empty keeps the current secret
  status.textContent = `Using settings from ${conn.source}.`;
}

async function apply() {
  const reply = await chrome.runtime.sendMessage({ demo: 'reconfigure' });
  if (!reply?.ok) throw new Error(reply?.error ?? 'the background did not answer');
  return reply.result.restarted ? 'Saved; the tracker restarted with the new server.' : 'Saved; new credentials applied.';
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const previous = (await loadSaved()) ?? (await loadConnection());
    const tokenSecret = form.tokenSecret.value || previous.tokenSecret;
    await save({ baseUrl: form.baseUrl.value.trim(), tokenId: form.tokenId.value.trim(), tokenSecret });
    status.textContent = await apply();
  } catch (e) {
    status.textContent = `Could not save: ${e.message}`;
  }
  form.tokenSecret.value = '';
});

document.getElementById('reset').addEventListener('click', async () => {
  try {
    await clear();
    status.textContent = await apply();
    await fill();
  } catch (e) {
    status.textContent = `Could not reset: ${e.message}`;
  }
});

// Usage data: where the manifest declares Firefox's data consent for it, the choice is Firefox's
// permission (asked from this click; the tracker follows grants and revocations); elsewhere it is
// the tracker's own opt-out, which is kept in storage.
const CONSENT = 'technicalAndInteraction';
const share = document.getElementById('share');
const firefoxConsent = chrome.runtime.getManifest().browser_specific_settings?.gecko?.data_collection_permissions?.optional?.includes(CONSENT);

async function showShare() {
  share.checked = firefoxConsent ? (await chrome.permissions.getAll()).data_collection?.includes(CONSENT) === true : await isEnabled();
}

share.addEventListener('change', async () => {
  const on = share.checked;
  try {
    if (firefoxConsent) {
      const request = { data_collection: [CONSENT] };
      await (on ? chrome.permissions.request(request) : chrome.permissions.remove(request));
    } else {
      await setEnabled(on, { purge: !on });
    }
    status.textContent = on ? 'Usage data is shared.' : 'Usage data is not shared; what was waiting is deleted.';
  } catch (e) {
    status.textContent = `Could not change it: ${e.message}`;
  }
  await showShare();
});

fill();
showShare();
