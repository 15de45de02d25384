// People's journey through the web app in a real Chromium (Debian's, never a downloaded
// one): a seller signs up, deposits, sees the balance and the chart, asks for a long
// statement and downloads its CSV, and puts a product up for sale; a buyer signs up,
// deposits and buys it, earns a voucher and buys again with it; the admin ships and
// delivers both orders; the seller sees the payouts and signs out. Every page is checked
// with axe-core and html-validate, and photographed at desktop and phone widths.
//
// Usage: node journey.js <web app URL> <screenshot directory> <admin email>
// (the admin email is one the platform lists in ADMIN_EMAILS, not signed up yet)
// Prints one line per step; exits 0 when every check held, 1 with the reason otherwise.
// Run by stack/tests/browser.rs.

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");
const axe = require("axe-core");
const { HtmlValidate } = require("html-validate");

const [baseUrl, shotDir, adminEmail] = process.argv.slice(2);
if (!baseUrl || !shotDir || !adminEmail) {
  console.error("usage: node journey.js <web app URL> <screenshot directory> <admin email>");
  process.exit(2);
}
const PASSWORD = "correct horse battery";
// The standard's rules and html-validate's recommended ones (which include them).
const validator = new HtmlValidate({ extends: ["html-validate:recommended"] });

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

// The last HTML document each page loaded, as the server sent it: what the validator reads
// (the DOM the browser built from it would hide the server's mistakes).
const lastDocument = new WeakMap();

function trackDocuments(page) {
  page.on("response", (response) => {
    const request = response.request();
    const html = (response.headers()["content-type"] || "").startsWith("text/html");
    if (request.isNavigationRequest() && request.frame() === page.mainFrame() && html) {
      lastDocument.set(page, response);
    }
  });
}

async function invalidHtml(page) {
  const response = lastDocument.get(page);
  check(response, `no HTML document was loaded for ${page.url()}`);
  const report = await validator.validateString(await response.text(), response.url());
  return report.results.flatMap((result) =>
    result.messages.map((message) => `${message.line}:${message.column} ${message.ruleId}: ${message.message}`),
  );
}

async function validate(page, name) {
  const invalid = await invalidHtml(page);
  check(invalid.length === 0, `${name} is not valid HTML:\n  ${invalid.join("\n  ")}`);
}

// Checks the page's HTML, and with axe at both widths, and writes the two screenshots.
async function inspect(page, name) {
  await validate(page, name);
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
    // A generous deadline: a full-page screenshot waits for the browser's next frames, which
    // a machine busy with other builds can hold back for seconds.
    await page.screenshot({ path: path.join(shotDir, `${name}-${width}.png`), fullPage: true, timeout: 60_000 });
  }
  await page.setViewportSize(DESKTOP);
  console.log(`page ${name}: valid HTML, no axe violations, screenshots written`);
}

// Reloads the page until the element with `testId` says `expected` (payments and payouts
// follow their orders through events, within about a second).
async function reloadUntil(page, testId, expected) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const shown = (await page.getByTestId(testId).first().textContent()).trim();
    if (shown === expected) return;
    check(Date.now() < deadline, `${page.url()} still shows ${testId} "${shown}", not "${expected}"`);
    await page.waitForTimeout(250);
    await page.reload();
  }
}

function nav(page, name) {
  return page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
}

async function signUp(page, email) {
  await page.goto(`${baseUrl}/sign-up`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${baseUrl}/wallet`);
}

async function depositInto(page, amount) {
  const form = page.locator("form[action='/wallet/deposit']");
  await form.getByLabel("Amount (EUR)").fill(amount);
  await form.getByRole("button", { name: "Deposit" }).click();
  await page.waitForURL(`${baseUrl}/wallet?done=deposit`);
}

async function balanceOf(page) {
  await page.goto(`${baseUrl}/wallet`);
  return page.getByTestId("balance").textContent();
}

// Buys `quantity` of the product at `productUrl`, optionally with a voucher; waits until
// the order is paid and returns its total.
async function buy(page, productUrl, quantity, voucher) {
  await page.goto(productUrl);
  await page.getByLabel("Quantity").fill(String(quantity));
  if (voucher) await page.getByLabel("Voucher code (optional)").fill(voucher);
  await page.getByRole("button", { name: "Buy", exact: true }).click();
  await page.waitForURL(/\/orders\/[0-9a-f-]+\?done=placed$/);
  const placed = await page.getByRole("status").first().textContent();
  check(placed === "Order placed. It is paid from your wallet within a few seconds.", `after buying the page says ${placed}`);
  await reloadUntil(page, "order-status", "paid");
  return page.getByTestId("total").textContent();
}

// The admin ships the one paid order, then delivers it.
async function shipAndDeliver(page, items) {
  await page.goto(`${baseUrl}/admin`);
  const toShip = page.getByRole("row", { name: new RegExp(items) });
  await toShip.getByRole("button", { name: "Mark as sent" }).click();
  await page.waitForURL(`${baseUrl}/admin?status=sent&done=ship`);
  check((await page.getByRole("status").textContent()) === "Order marked as sent.", "no shipping notice");
  const toDeliver = page.getByRole("row", { name: new RegExp(items) });
  check((await toDeliver.textContent()).includes("sent"), "the shipped order is not listed as sent");
  await toDeliver.getByRole("button", { name: "Mark as delivered" }).click();
  await page.waitForURL(`${baseUrl}/admin?status=delivered&done=deliver`);
  check((await page.getByRole("row", { name: new RegExp(items) }).count()) === 1, "the order is not listed as delivered");
}

// A person in their own browser context (their own cookies), whose console errors count.
async function newPerson(browser, problems) {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  trackDocuments(page);
  // A CSP violation or any other console error means a page does something it should not.
  // (A form answered with 4xx is logged as a failed load too: those are expected, and the
  // steps check what the page then says.)
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(message.text());
    }
  });
  page.on("pageerror", (error) => problems.push(error.message));
  return page;
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
  const problems = [];
  const page = await newPerson(browser, problems);

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
    await page.getByLabel("Password").fill(PASSWORD);
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
    await validate(page, "the wallet with a problem");
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

    // The seller puts a product up for sale; a typo in the price is explained first.
    await nav(page, "Selling").click();
    const newProduct = page.locator("form[action='/selling/products']");
    await newProduct.getByLabel("Name").fill("Concert ticket");
    await newProduct.getByLabel("Description (optional)").fill("Row 3, seat 12");
    await newProduct.getByLabel("Price (EUR)").fill("60.001");
    await newProduct.getByLabel("Units for sale").fill("5");
    await newProduct.evaluate((form) => form.setAttribute("novalidate", ""));
    await newProduct.getByRole("button", { name: "Put up for sale" }).click();
    const priceReason = await newProduct.getByRole("alert").textContent();
    check(priceReason === "Price: Enter an amount like 12.50.", `the product form says ${priceReason}`);
    check((await newProduct.getByLabel("Name").inputValue()) === "Concert ticket", "the typed name was lost");
    await validate(page, "the selling page with a problem");
    await newProduct.getByLabel("Price (EUR)").fill("60.00");
    await newProduct.getByRole("button", { name: "Put up for sale" }).click();
    await page.waitForURL(`${baseUrl}/selling?done=created`);
    await inspect(page, "selling");
    const listed = page.getByRole("row", { name: /Concert ticket/ });
    const cells = (await listed.getByRole("cell").allTextContents()).slice(1).join(" / ");
    check(cells === "60.00 EUR / 5 / 0 / 0", `the product is listed with ${cells}`);
    // An edit carries the version it was based on.
    await listed.getByRole("link", { name: "Concert ticket" }).click();
    await page.getByLabel("Description (optional)").fill("Row 3, seat 12, near the stage");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(/\/selling\/products\/[0-9a-f-]+\?done=saved$/);
    const state = await page.getByTestId("product-state").textContent();
    check(state.replace(/\s+/g, " ").trim() === "Version 2 · active · 0 awaiting payment · 0 sold", `the edited product shows ${state}`);
    await inspect(page, "product-edit");
    const productUrl = `${baseUrl}/shop/${page.url().split("/").pop().split("?")[0]}`;
    console.log("product listed: Concert ticket at 60.00 EUR, 5 units");

    // The buyer, in another browser: signs up, deposits, finds the product and buys two.
    const buyer = await newPerson(browser, problems);
    await signUp(buyer, `buyer-${Date.now()}@example.com`);
    await depositInto(buyer, "200");
    await nav(buyer, "Shop").click();
    await buyer.getByLabel("Search by name").fill("concert");
    await buyer.getByRole("button", { name: "Search" }).click();
    await inspect(buyer, "shop");
    await buyer.getByRole("link", { name: "Concert ticket" }).click();
    check((await buyer.getByTestId("price").textContent()) === "60.00 EUR", "the product page shows another price");
    check((await buyer.getByTestId("available").textContent()) === "5 available", "the product page shows another stock");
    await inspect(buyer, "product");
    // The admin pages are not the buyer's: no link, and the API's refusal as a sentence.
    check((await nav(buyer, "Admin").count()) === 0, "a customer sees the admin link");
    await buyer.goto(`${baseUrl}/admin`);
    const refusal = await buyer.getByTestId("refused").textContent();
    check(refusal === "Only an admin can see every user's orders and accounts.", `a customer's admin page says ${refusal}`);
    await inspect(buyer, "admin-refused");
    await buyer.goto(`${baseUrl}/no-such-page`);
    await inspect(buyer, "not-found");
    const firstTotal = await buy(buyer, productUrl, 2);
    check(firstTotal === "120.00 EUR", `the first order costs ${firstTotal}`);
    await inspect(buyer, "order");
    console.log(`bought 2 tickets: ${firstTotal}, paid`);

    // The admin ships and delivers it; the buyer earns a voucher (an order over 100.00 EUR).
    const admin = await newPerson(browser, problems);
    await signUp(admin, adminEmail);
    await nav(admin, "Admin").click();
    await inspect(admin, "admin-orders");
    await shipAndDeliver(admin, "Concert ticket × 2");
    await nav(admin, "Admin").click();
    await admin.getByRole("link", { name: "Users" }).click();
    const accounts = await admin.getByRole("row").count();
    check(accounts === 4, `the users list has ${accounts - 1} accounts, not the seller, the buyer and the admin`);
    await inspect(admin, "admin-users");
    console.log("the admin shipped and delivered the first order");

    // The buyer spends the voucher on a second ticket: 60.00 − 5.00.
    await nav(buyer, "Vouchers").click();
    await reloadUntil(buyer, "voucher-value", "5.00 EUR");
    const voucher = await buyer.getByRole("cell").locator("code").first().textContent();
    const secondTotal = await buy(buyer, productUrl, 1, voucher);
    check(secondTotal === "55.00 EUR", `the order with the voucher costs ${secondTotal}`);
    const discount = await buyer.getByTestId("discount").textContent();
    check(discount === "−5.00", `the voucher took off ${discount}`);
    const buyerBalance = await balanceOf(buyer);
    check(buyerBalance === "25.00 EUR", `the buyer's balance is ${buyerBalance}, not 200.00 − 120.00 − 55.00`);
    console.log(`bought 1 ticket with voucher ${voucher}: ${secondTotal}, paid; buyer's balance ${buyerBalance}`);
    await shipAndDeliver(admin, "Concert ticket × 1");

    // The seller sees both payouts, and their wallet has them.
    await nav(page, "Sales").click();
    await reloadUntil(page, "payout", "55.00 EUR");
    const payouts = await page.getByTestId("payout").allTextContents();
    check(payouts.join(" / ") === "55.00 EUR / 120.00 EUR", `the sales page shows payouts ${payouts.join(" / ")}`);
    await inspect(page, "sales");
    const sellerBalance = await balanceOf(page);
    check(sellerBalance === "200.50 EUR", `the seller's balance is ${sellerBalance}, not 25.50 + 120.00 + 55.00`);
    await page.goto(productUrl);
    check((await page.getByTestId("available").textContent()) === "2 available", "the sold units are still on sale");
    console.log(`seller paid: ${payouts.join(" + ")}, balance ${sellerBalance}`);

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
