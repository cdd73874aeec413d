// The clinical summary in the portal (issue 15, "a record people can read"):
// the treating doctor imports a vendor C-CDA document and a Synthea FHIR
// bundle into Ada's record; Ada reads her summary (problems, allergies with
// their reactions, results with visible flags, charts, the documents by
// title, never an id, a key or a code system URI), downloads her record as
// FHIR and C-CDA, prints it, and reads it on a phone; the doctor sees the
// same summary in his view of her record. Every page visited is checked
// with axe-core (no serious or critical violation). What the page must show
// is taken from the summary API's own answer, not written here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  apiFetch, apiToken, assertAccessible, demoAccounts, fillSignIn, launch, openPage, screenshot, signIn,
} from './lib.mjs';

const { accounts, patients } = demoAccounts();
const ada = accounts['ada'];
const heart = accounts['dr.heart'];
const patientId = patients[0];  // Ada's record, treated by Dr. Heart
const interop = new URL('../tests/data/interop/', import.meta.url);
const ccdaFile = new URL('ccda/Documents_CCD_CCD_1_CCD.xml', interop);
const fhirFile = new URL('fhir/synthea/Michael_Kihn_376f9fc0-ecd8-468a-ad93-3534a14561a3.json', interop);
const summaryPath = `/api/v1/patients/${patientId}/summary?points=100`;  // as the page asks

// What must never be read on the page: ids (32 hex), document keys ("d" and
// 16 hex), code system URIs and storage paths.
const LEAKS = [/[0-9a-f]{32}/, /\bd[0-9a-f]{16}\b/, /urn:oid|http:\/\/loinc|https?:\/\/snomed|health-status\//];
const FORMAT_WORDS = { ccda: 'C-CDA document', fhir: 'FHIR bundle' };

let browser;
let doctorToken;
const imported = {};      // format -> document key
let patientSummary;      // the summary as Ada's own token gets it

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const firstLine = (s) => String(s || '').split('\n')[0];
const capitalise = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : '');
const titleOf = (d) => d.title || (d.type && d.type.display) || `Untitled ${FORMAT_WORDS[d.format]}`;

async function summaryAs(token) {
  const res = await apiFetch(token, 'GET', summaryPath);
  assert.equal(res.status, 200, 'the summary is answered');
  return res.json();
}

// The summary panel has loaded (its charts drawn at the page's width).
async function summaryLoaded(page) {
  await page.locator('[data-testid=summary][data-loaded=true]').waitFor();
  await page.evaluate(() => new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame(r)); }));
}

function assertNothingLeaks(text, where) {
  for (const re of LEAKS) assert.doesNotMatch(text, re, `nothing like ${re} in ${where}`);
  for (const key of Object.values(imported)) assert.ok(!text.includes(key), `no document key in ${where}`);
}

test('the treating doctor imports a C-CDA document and a Synthea FHIR bundle into the record', async () => {
  doctorToken = await apiToken(heart);
  for (const [file, type] of [[ccdaFile, 'application/xml'], [fhirFile, 'application/fhir+json']]) {
    const res = await apiFetch(doctorToken, 'POST', `/api/v1/patients/${patientId}/documents`,
      { body: readFileSync(file), type });
    const answer = await res.json();
    assert.ok([200, 201].includes(res.status), `imported (${res.status} ${JSON.stringify(answer)})`);
    assert.ok(answer.entries > 0, 'with entries');
    imported[answer.format] = answer.document_key;
  }
  assert.deepEqual(Object.keys(imported).sort(), ['ccda', 'fhir']);
  patientSummary = await summaryAs(await apiToken(ada));
  const keys = patientSummary.documents.map((d) => d.key);
  assert.ok(keys.includes(imported.ccda) && keys.includes(imported.fhir), 'both documents are in her summary');
});

test('the patient reads her summary: problems, allergies, flagged results, charts, documents, no ids', async () => {
  const s = patientSummary;
  const { context, page, problems } = await openPage(browser, { width: 1280, height: 900 });
  await assertAccessible(page, 'sign-in');
  await fillSignIn(page, ada);
  await page.getByTestId('latest-measurements').waitFor();
  await page.getByTestId('chart-bp').waitFor();
  await assertAccessible(page, 'patient-home');
  await page.getByTestId('nav-summary').click();
  await summaryLoaded(page);
  assert.equal(await page.getByTestId('page-title').innerText(), 'My health summary');

  // The header: her name, birth date and age, sex, record number.
  assert.equal(await page.getByTestId('summary-name').innerText(), s.patient.name);
  assert.match(await page.getByTestId('summary-birth').innerText(), /\(age \d+\)/);
  assert.equal((await page.getByTestId('summary-sex').innerText()).toLowerCase(), s.patient.gender);
  assert.equal(await page.getByTestId('summary-mrn').innerText(), s.patient.medical_record_numbers.join(', '));

  // Problems: those of the C-CDA document, current ones on the page, the
  // others behind "Resolved problems".
  const section = page.getByTestId('summary-problems');
  const fromCcda = s.sections.problems.filter((p) => p.documents.includes(imported.ccda));
  assert.ok(fromCcda.length > 0, 'the C-CDA document brings problems');
  const past = section.getByTestId('summary-problems-past');
  if (await past.count()) await past.locator('summary').click();
  const shown = await section.getByTestId('summary-item-name').allInnerTexts();
  for (const p of fromCcda) assert.ok(shown.includes(firstLine(p.name)), `problem ${p.name} listed`);
  const current = fromCcda.find((p) => p.active);
  assert.ok(current, 'a current problem');
  assert.ok(await section.locator(':scope > ul [data-testid=summary-item-name]', { hasText: firstLine(current.name) }).first().isVisible());

  // Allergies: each with its reactions and severity.
  const allergies = s.sections.allergies.filter((a) => (a.reactions || []).length);
  assert.ok(allergies.length > 0, 'allergies with reactions');
  for (const a of allergies) {
    const item = page.getByTestId('summary-allergies').getByTestId('summary-item').filter({ hasText: firstLine(a.name) }).first();
    assert.match(await item.getByTestId('summary-reactions').innerText(), new RegExp(a.reactions[0]));
    if (a.severity) assert.match(await item.getByTestId('summary-severity').innerText(), new RegExp(a.severity));
  }

  // Sections the record has no section of its own for (the vendor's payers
  // and functional status): their statements under the section's name.
  const others = s.sections.other_sections || [];
  assert.ok(others.length > 0, 'statements of sections without a kind');
  const groups = await page.getByTestId('summary-other-sections').locator('.summary-group > h3').allInnerTexts();
  for (const name of new Set(others.map((o) => o.section))) assert.ok(groups.includes(name), `section ${name} shown`);
  assert.ok(groups.some((g) => /functional status/i.test(g)), 'functional status by its name');
  // Test panels keep their own name and count their results.
  const panels = s.sections.panels || [];
  assert.ok(panels.length > 0, 'the vendor document brings a result panel');
  const panelItems = await page.getByTestId('summary-panels').getByTestId('summary-item').allInnerTexts();
  assert.ok(panelItems.some((t) => t.includes(firstLine(panels[0].name)) && /\d+ results?/.test(t)), 'a panel with its count');

  // Results: a visible badge in words on every abnormal value, and the count.
  const abnormal = s.observations.map((g, i) => ({ g, i })).filter(({ g }) => g.abnormal_count > 0);
  assert.ok(abnormal.length > 0, 'the documents bring abnormal results');
  for (const { g, i } of abnormal) {
    const group = page.locator(`[data-testid=summary-group][data-group-index="${i}"]`);
    assert.match(await group.getByTestId('summary-abnormal-count').innerText(), new RegExp(`^${g.abnormal_count} of ${g.count} abnormal$`));
    const toggle = group.locator('details.chart-table > summary');
    if (await toggle.count()) await toggle.click();
    const flags = group.locator('tbody [data-testid=summary-flag][data-abnormal=true]');
    const points = g.points.filter((p) => p.abnormal);
    assert.equal(await flags.count(), points.length, `every abnormal value of ${g.name} is flagged`);
    assert.ok(await flags.first().isVisible(), 'the flag is visible');
    assert.match(await flags.first().innerText(), new RegExp(`^${capitalise(points[0].flag_text || 'Abnormal')}`));
  }

  // Reference ranges: the vendor document gives its results normal ranges,
  // each shown beside its value as the API words it.
  const ranged = s.observations.map((g, i) => ({ g, i })).filter(({ g }) => g.points.some((p) => p.reference_range));
  assert.ok(ranged.length > 0, 'the vendor document brings reference ranges');
  for (const { g, i } of ranged) {
    const group = page.locator(`[data-testid=summary-group][data-group-index="${i}"]`);
    const cells = await group.getByTestId('summary-range').allTextContents();
    assert.deepEqual(cells.map((t) => t.trim()), g.points.map((p) => p.reference_range || '—'), `ranges of ${g.name}`);
  }

  // Charts: a numeric group with two values or more has one; blood pressure
  // keeps its target bands.
  const numeric = (p) => /^-?\d+(\.\d+)?$/.test(p.value || '');
  const charted = s.observations.findIndex((g) => g.numeric && g.points.filter(numeric).length >= 2);
  assert.ok(charted >= 0, 'a numeric group to chart');
  const chart = page.getByTestId(`summary-chart-${charted}`);
  assert.ok(await chart.locator('svg[role=img] polyline').first().isVisible(), 'its chart is drawn');
  assert.match(await chart.locator('svg desc').textContent(), /values? from/);
  const bp = s.observations.findIndex((g) => g.points.some((p) => (p.components || []).some((c) => /systolic/i.test(c.name))));
  assert.ok(bp >= 0, 'blood pressure readings');
  assert.equal(await page.getByTestId(`summary-chart-${bp}`).locator('rect.band-systolic').count(), 1, 'the target band');

  // The documents by title and format in words, never by key.
  const docs = await page.getByTestId('summary-document').allInnerTexts();
  for (const d of s.documents) {
    assert.ok(docs.some((t) => t.includes(titleOf(d)) && t.includes(FORMAT_WORDS[d.format])), `document ${titleOf(d)} listed`);
  }
  const ccdaTitle = s.documents.find((d) => d.key === imported.ccda).title;
  assert.ok(ccdaTitle && docs.some((t) => t.startsWith(ccdaTitle)), 'the C-CDA document by its own title');

  assertNothingLeaks(await page.locator('body').innerText(), 'the page');
  assertNothingLeaks(await page.locator('main').innerHTML(), 'the page\'s markup');
  await screenshot(page, 'summary-desktop');
  await assertAccessible(page, 'summary');

  // "Download my record": the export with her token, handed over as a file.
  const [fhir] = await Promise.all([page.waitForEvent('download'), page.getByTestId('summary-download-fhir').click()]);
  const bundle = readFileSync(await fhir.path(), 'utf8');
  assert.ok(bundle.startsWith('{'), 'a JSON document');
  assert.equal(JSON.parse(bundle).resourceType, 'Bundle');
  assert.match(fhir.suggestedFilename(), /\.json$/);
  const [ccda] = await Promise.all([page.waitForEvent('download'), page.getByTestId('summary-download-ccda').click()]);
  const cda = readFileSync(await ccda.path(), 'utf8');
  assert.match(cda, /^<\?xml|^<ClinicalDocument/);
  assert.match(cda, /<ClinicalDocument/);

  // Printed: the summary without navigation and buttons.
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.getByTestId('nav').isVisible(), false, 'no navigation on paper');
  assert.equal(await page.getByTestId('summary-downloads').isVisible(), false, 'no buttons on paper');
  assert.ok(await page.getByTestId('summary-problems').isVisible(), 'the summary on paper');
  await screenshot(page, 'summary-print');
  await page.emulateMedia({ media: 'screen' });

  // The stored entries are one link away.
  await page.getByTestId('nav-record').click();
  await page.getByTestId('record-tree').locator('details').first().waitFor();
  await assertAccessible(page, 'stored entries');
  assert.deepEqual(problems, []);
  await context.close();
});

test('on a phone the summary fits the width, its labels do not overlap and every control is a 44 px target', async () => {
  const { context, page, problems } = await signIn(browser, ada, { viewport: { width: 375, height: 812 } });
  await page.getByTestId('nav-summary').click();
  await summaryLoaded(page);
  const width = () => page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(await width() <= 375, `no sideways scrolling (${await width()} px)`);

  // Every visible link, button and disclosure in the page is at least 44 x 44.
  const small = await page.evaluate(() => [...document.querySelectorAll('header a, header button, main a, main button, main summary')]
    .map((e) => ({ e, r: e.getBoundingClientRect() }))
    .filter(({ e, r }) => r.width > 0 && r.height > 0 && e.checkVisibility())
    .filter(({ r }) => r.width < 44 || r.height < 44)
    .map(({ e, r }) => `${e.tagName.toLowerCase()} "${e.textContent.trim().slice(0, 40)}" ${Math.round(r.width)}x${Math.round(r.height)}`));
  assert.deepEqual(small, [], 'touch targets of 44 px');

  // The time labels of each chart do not run into each other.
  const overlaps = await page.evaluate(() => [...document.querySelectorAll('[data-testid^="summary-chart-"] svg')].flatMap((svg) => {
    const boxes = [...svg.querySelectorAll('.tick-x')].map((t) => t.getBoundingClientRect());
    return boxes.slice(1).filter((b, i) => b.left < boxes[i].right).map(() => svg.closest('figure').dataset.testid);
  }));
  assert.deepEqual(overlaps, [], 'chart labels apart');

  await screenshot(page, 'summary-phone');
  await assertAccessible(page, 'summary (phone)');
  // Every folded part opened (tables, past items): still no sideways scrolling.
  await page.evaluate(() => { for (const d of document.querySelectorAll('.summary details')) d.open = true; });
  assert.ok(await width() <= 375, `opened, still no sideways scrolling (${await width()} px)`);
  await screenshot(page, 'summary-phone-opened');
  await assertAccessible(page, 'summary opened (phone)');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the treating doctor sees the same summary in his view of the record, with the codes', async () => {
  const s = await summaryAs(doctorToken);
  const { context, page, problems } = await signIn(browser, heart);
  await page.getByTestId('nav-patients').click();
  await page.getByTestId('my-patient-item').first().waitFor();
  await assertAccessible(page, 'my patients');
  // His patients sorted by name, and found by a part of a name or a birth
  // date typed in the filter.
  const names = await page.locator('[data-testid=my-patient-item] [data-testid=patient-link]').allInnerTexts();
  assert.ok(names.length >= 2, 'Dr. Heart treats two demo patients');
  assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)), 'sorted by name');
  const target = await page.locator(`[data-testid=my-patient-item][data-patient-id="${patientId}"] [data-testid=patient-link]`).innerText();
  const part = target.split(',')[0].trim().slice(1, 4).toLowerCase();  // a piece of the family name
  await page.getByTestId('my-patients-filter').fill(part);
  const matching = await page.locator('[data-testid=my-patient-item] [data-testid=patient-link]').allInnerTexts();
  assert.ok(matching.includes(target), `"${part}" finds ${target}`);
  assert.ok(matching.every((n) => n.toLowerCase().includes(part)), 'only patients that match');
  await page.getByTestId('my-patients-filter').fill('no such patient 1899');
  assert.equal(await page.getByTestId('my-patient-item').count(), 0);
  assert.match(await page.getByTestId('my-patients-count').innerText(), /^0 of \d+ patients match/);
  await page.getByTestId('my-patients-filter').fill('');
  await page.locator(`[data-testid="patient-link"][data-patient-id="${patientId}"]`).click();
  await page.getByTestId('patient-header').waitFor();
  // The header in words: no ISO date, no id unless asked for.
  const line = await page.getByTestId('patient-header-line').innerText();
  assert.match(line, /^Born [A-Z][a-z]{2} \d{1,2}, \d{4} \(age \d+\)/);
  assert.equal(await page.getByTestId('patient-record-id').isVisible(), false);
  await summaryLoaded(page);
  const summary = page.getByTestId('summary');

  const section = page.getByTestId('summary-problems');
  const current = s.sections.problems.filter((p) => p.active && p.documents.includes(imported.ccda));
  assert.ok(current.length > 0, 'current problems from the C-CDA document');
  const shown = await section.locator(':scope > ul [data-testid=summary-item-name]').allInnerTexts();
  for (const p of current) assert.ok(shown.includes(firstLine(p.name)), `problem ${p.name} listed`);
  // Codes for clinicians: the system's name and the code, never its URI.
  const code = current[0].code;
  const codes = await section.getByTestId('summary-code').allInnerTexts();
  assert.ok(codes.some((t) => t.includes(`${code.system_name} ${code.code}`)), 'the problem\'s code');
  assert.equal(await summary.getByTestId('summary-download-fhir').count(), 0, 'downloads are the patient\'s');
  assert.equal(await page.getByTestId('summary-documents').getByTestId('summary-document').count(), s.documents.length);

  assertNothingLeaks(await summary.innerText(), 'the doctor\'s summary');
  await screenshot(page, 'summary-doctor');
  await assertAccessible(page, 'the doctor\'s patient page');
  assert.deepEqual(problems, []);
  await context.close();
});
