// A person's journey through the web app in a real Chromium (Debian's, never a downloaded
// one): sign up, deposit, see the balance and the chart, ask for a long statement and
// download its CSV, look at orders and vouchers, sign out. Every page is checked with
// axe-core and photographed at desktop and phone widths.
//
// Usage: node journey.js <web app URL> <screenshot directory>
// Prints one line per step; exits 0 when every check held, 1 with the reason otherwise.
// Run by stack/tests/browser.rs.

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");
const axe = require("axe-core");

const [baseUrl, shotDir] = process.argv.slice(2);
if (!baseUrl || !shotDir) {
  console.error("usage: node journey.js <web app URL> <screenshot directory>");
  process.exit(2);
}

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const STEP_TIMEOUT_MS = 20_000;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function day(offsetDays) {
  const date = new Date(Date.now() + offsetDays * 86_400_000);
  return date.toISOString().slice(0, 10);
}

// axe-core is evaluated through the DevTools protocol, which the page's CSP (no script at
// all) does not apply to; the page itself stays as strict as it is for people.
async function accessibilityViolations(page) {
  await page.evaluate(axe.source);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map(
      (violation) => `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).join(", ")})`,
    );
  });
}

// Checks the page with axe at both widths and writes the two screenshots.
async function inspect(page, name) {
  for (const [width, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    const violations = await accessibilityViolations(page);
    check(violations.length === 0, `${name} (${width}) has accessibility violations:\n  ${violations.join("\n  ")}`);
    // Nothing wider than the phone's screen: the layout fits without sideways scrolling.
    if (width === "phone") {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) {
        // Name the elements that stick out, so the failure says what to fix.
        const wide = await page.evaluate(() =>
          [...document.querySelectorAll("body *")]
            .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 8)
            .map((element) => `${element.tagName.toLowerCase()}.${element.className} (right ${Math.round(element.getBoundingClientRect().right)})`),
        );
        check(false, `${name} is ${overflow}px wider than a phone's screen: ${wide.join(", ")}`);
      }
    }
    await page.screenshot({ path: path.join(shotDir, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
  console.log(`page ${name}: no axe violations, screenshots written`);
}

async function main() {
  fs.mkdirSync(shotDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const problems = [];
  // A CSP violation or any other console error means a page does something it should not.
  // (A form answered with 4xx is logged as a failed load too: those are expected, and the
  // steps check what the page then says.)
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(message.text());
    }
  });
  page.on("pageerror", (error) => problems.push(error.message));

  try {
    // Behind sign-in: the wallet sends a stranger to sign in.
    await page.goto(`${baseUrl}/wallet`);
    check(new URL(page.url()).pathname === "/sign-in", `/wallet went to ${page.url()}, not /sign-in`);
    await inspect(page, "sign-in");

    // Sign up.
    await page.getByRole("link", { name: "Create an account" }).click();
    await inspect(page, "sign-up");
    const email = `browser-${Date.now()}@example.com`;
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${baseUrl}/wallet`);
    const empty = await page.getByTestId("balance").textContent();
    check(empty === "0.00 EUR", `a new wallet shows ${empty}`);
    console.log(`signed up as ${email}`);

    // A typo in the amount: the reason next to the deposit form.
    const deposit = page.locator("form[action='/wallet/deposit']");
    await deposit.getByLabel("Amount (EUR)").fill("12.345");
    // The browser's own check (pattern) would stop the form; the server's message is the
    // one under test.
    await deposit.evaluate((form) => form.setAttribute("novalidate", ""));
    await deposit.getByRole("button", { name: "Deposit" }).click();
    const reason = await deposit.getByRole("alert").textContent();
    check(reason === "Enter an amount like 12.50.", `the deposit form says ${reason}`);
    console.log("a bad amount is explained next to its form");

    // Deposit, then the balance, the chart and the transaction.
    await deposit.getByLabel("Amount (EUR)").fill("25.50");
    await deposit.getByLabel("Description (optional)").fill("First top-up");
    await deposit.getByRole("button", { name: "Deposit" }).click();
    await page.waitForURL(`${baseUrl}/wallet?done=deposit`);
    const status = await page.getByRole("status").first().textContent();
    check(status === "Deposit made.", `after the deposit the page says ${status}`);
    const balance = await page.getByTestId("balance").textContent();
    check(balance === "25.50 EUR", `the balance shows ${balance}`);
    const chart = page.getByRole("img", { name: /^Balance from / });
    check(await chart.isVisible(), "the balance chart is not visible");
    const chartName = await chart.locator("title").textContent();
    check(chartName.endsWith(": 0.00 EUR to 25.50 EUR"), `the chart is named ${chartName}`);
    const points = (await chart.locator("polyline").getAttribute("points")).trim().split(/\s+/);
    check(points.length === 30, `the chart has ${points.length} points, not one per day of 30`);
    const row = page.getByRole("row", { name: /First top-up/ });
    check((await row.textContent()).includes("+25.50 EUR"), "the deposit is not in the transactions");
    console.log(`deposited: balance ${balance}, chart "${chartName}"`);
    await inspect(page, "wallet");

    // A long period: a job with its progress, then the CSV.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Statements" }).click();
    await inspect(page, "statements");
    await page.getByLabel("From").fill(day(-400));
    await page.getByLabel("To").fill(day(0));
    await page.getByRole("button", { name: "Show statement" }).click();
    await page.waitForURL(/\/statements\/jobs\/[0-9a-f-]+$/);
    const jobUrl = page.url();
    // The page reloads itself (a Refresh header) until the file is ready.
    // (A generous deadline: CI runs this beside every other test on two cores.)
    await page.getByRole("link", { name: "Download CSV" }).waitFor({ timeout: 60_000 });
    const ready = await page.getByTestId("job-status").textContent();
    check(ready === "Ready: 1 line.", `the job says ${ready}`);
    await inspect(page, "statement-job");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download CSV" }).click(),
    ]);
    const jobId = jobUrl.split("/").pop();
    check(download.suggestedFilename() === `statement-${jobId}.csv`, `the file is named ${download.suggestedFilename()}`);
    const csv = fs.readFileSync(await download.path(), "utf8").trimEnd().split("\n");
    check(csv[0] === "transaction_id,occurred_at,type,amount,balance_after,description", `the CSV starts with ${csv[0]}`);
    check(csv.length === 2 && csv[1].endsWith(",deposit,25.50,25.50,First top-up"), `the CSV is ${csv.join(" / ")}`);
    console.log(`statement ${day(-400)} to ${day(0)}: CSV downloaded with ${csv.length - 1} line`);

    // A short period shows the lines on the page.
    await page.goto(`${baseUrl}/statements?from=${day(-3)}&to=${day(0)}`);
    const closing = await page.getByTestId("closing").textContent();
    check(closing === "25.50 EUR", `the statement closes at ${closing}`);
    await inspect(page, "statement-lines");

    for (const [name, link] of [["orders", "Orders"], ["vouchers", "Vouchers"]]) {
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link }).click();
      await page.getByRole("heading", { level: 1, name: link }).waitFor();
      await inspect(page, name);
    }

    // Keyboard: the skip link is the first stop and leads to the content.
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement.textContent);
    check(focused === "Skip to content", `the first Tab stop is ${focused}`);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${baseUrl}/sign-in?signed_out=1`);
    check((await page.getByRole("status").textContent()) === "You are signed out.", "no sign-out notice");
    await page.goto(`${baseUrl}/wallet`);
    check(new URL(page.url()).pathname === "/sign-in", "the wallet is still shown after sign-out");
    console.log("signed out");

    check(problems.length === 0, `the browser reported errors:\n  ${problems.join("\n  ")}`);
    console.log("journey ok");
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`journey failed: ${error.stack || error}`);
  process.exit(1);
});
