// Everyone's plans (/plans, supervisors and administrators): when, the app, the code and
// link, the customer and the owner; each can be moved or cancelled.

import { OVERSEERS } from './account.js';
import { h } from './dom.js';
import { accountPage, section } from './page.js';
import { PlanList } from './plan-list.js';

/** @param {HTMLElement} root */
export async function renderAllPlans(root) {
  const page = await accountPage(root, 'plans.title', OVERSEERS);
  if (!page) return;
  const list = new PlanList({ scope: 'all', showOwner: true, maxMinutes: page.quota?.max_minutes ?? null });
  page.main.append(section('all-plans', 'plans.all', h('p', { class: 'notice-text', text: 'plans.all_hint' }), list.el));
  await list.load();
}
