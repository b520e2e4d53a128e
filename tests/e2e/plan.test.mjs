// The demo's tracking plan (extension-demo/src/plan.js, planMode 'reject') in a real extension:
// the popup's and the content script's events pass it; a call that breaks it, from a page or the
// worker, rejects naming the field, and nothing of it is stored (issue 25).
import { defineTests, assert, eq, env, settle, waitStored, byName, summarize, log } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const client = (page, op, ...args) =>
  page.evaluate(async ({ op, args }) => {
    try {
      return await (await import('./vendor/inhouse/client.js'))[op](...args);
    } catch (e) {
      return { code: e.code, field: e.field, message: e.message };
    }
  }, { op, args });

test("the demo's tracking plan: its own events pass; off-plan calls from the popup and the worker reject naming the field; nothing of them stored", 90_000, async (t) => {
  const { server, browser, site } = await env(t, { config: { plan: true }, site: true });
  await settle(server);
  const popup = await browser.openExtensionPage('popup.html');
  await popup.click('#track-purchase');
  const tab = await browser.ctx.newPage();
  await tab.goto(`${site.origin}/pricing`);
  await tab.click('#cta');
  await waitStored(server, byName('demo_purchase'), 1, 20_000);
  await waitStored(server, byName('cta_click'), 1, 20_000);
  const offPlan = await client(popup, 'track', 'demo_purchase', { sku: 'sku_1', price: '9.99', currency: 'EUR', screen: 'popup' });
  eq([offPlan.code, offPlan.field], ['INVALID_PROPERTY', 'properties.price'], `a string price from the popup: ${JSON.stringify(offPlan)}`);
  assert(/must be a number by the tracking plan, got the string "9\.99"/.test(offPlan.message), offPlan.message);
  const unknown = await browser.inWorker(() => globalThis.inhouseDemo.tracker().track('demo_purchased', {}).catch((e) => ({ code: e.code, message: e.message })));
  eq(unknown.code, 'UNKNOWN_EVENT', `an unknown event from the worker: ${JSON.stringify(unknown)}`);
  assert(/did you mean "demo_purchase"/.test(unknown.message), unknown.message);
  const stats = await client(popup, 'stats');
  eq(stats.planViolations, 2, 'stats().planViolations');
  eq(summarize(await server.events(), byName('demo_purchase')).events.length, 1, 'only the valid demo_purchase stored');
  eq(summarize(await server.events(), byName('demo_purchased')).events.length, 0, 'the unknown event not stored');
  log(`demo_purchase and cta_click pass the plan; off-plan: ${offPlan.code} ${offPlan.field}, ${unknown.code}; planViolations ${stats.planViolations}`);
});
