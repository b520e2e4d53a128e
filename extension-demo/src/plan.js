// The demo's tracking plan: every event the demo sends itself, with its properties and their
// types. The background's init() checks each track() against it, from the popup and the content
// script too (planMode 'reject': a call that breaks it fails, naming the field). The SDK's own
// `$` events are not part of it.
import { defineTrackingPlan } from './vendor/inhouse/index.js';

export const DEMO_PLAN = defineTrackingPlan({
  button_click: { properties: { button: 'string', screen: { enum: ['popup', 'options'] }, count: 'number' } },
  demo_purchase: { properties: { sku: 'string', price: 'number', currency: { enum: ['EUR', 'USD'] }, screen: 'string' } },
  burst_event: { properties: { index: 'number', screen: 'string' } },
  background_action: { properties: { trigger: { enum: ['popup'] }, at: 'string' } },
  // From the content script: the page's path, and the clicked element's data-inhouse-prop-*.
  cta_click: { properties: { path: 'string', placement: { type: 'string', required: false } }, additionalProperties: true },
  // The content script's diagnostics (content.js): what a page may ask it to try, to show that
  // the background refuses `$` properties and ignores a hand-made message's claims.
  forged_props: { additionalProperties: true },
  forged_message: { properties: { a: 'number' } },
});
