// Options page: edits the connection saved in IndexedDB, then asks the background to apply it
// (setCredentials, or a new tracker when the server URL changed).
import { loadConnection, loadSaved, save, clear } from './settings.js';

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

fill();
