package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.File;
import java.io.RandomAccessFile;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web console (docs/console.md) in a real browser: Debian's headless {@code chromium} driven through Debian's
 * {@code chromedriver} by Selenium, against three nodes in child JVMs (storage nodes {@code a} and {@code b}, client
 * {@code c} with a mirrored device {@code m0} over both). The page is c's. It must list every member (with what each
 * says about itself) and the devices; a map done in the page must appear in the HTTP API and {@code weft status};
 * a node's refusal must be shown as its text; a freeze drill started in the page must show m0 degraded, then its
 * leg resyncing with the progress bar moving (c's resync is throttled to 1 MiB/s so the copy of the dirty regions
 * lasts seconds), then the report; a change without credentials must be refused.
 *
 * <p>No sleeps: every wait polls the page (WebDriverWait) or the API with a deadline. With
 * {@code -Dweft.console.screenshots=DIR} each view is saved as {@code DIR/console-<view>.png} (docs/img holds the
 * committed ones). The driver path is given explicitly, so Selenium Manager never downloads anything.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleIT {
    static final Path CHROMIUM = Path.of(System.getProperty("weft.console.chromium", "/usr/bin/chromium"));
    static final Path CHROMEDRIVER = Path.of(System.getProperty("weft.console.chromedriver", "/usr/bin/chromedriver"));
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final long LEG_SIZE = 64L << 20;

    final List<NodeProcess> started = Collections.synchronizedList(new ArrayList<>());
    Path dir;
    NodeProcess a;
    NodeProcess b;
    NodeProcess c;
    Thread reaper;
    ChromeDriverService service;
    WebDriver browser;
    String base;

    String config(String name, String roles, Path exportRoot, List<String> seeds) {
        return ClusterNodeHocon.of(name, roles, exportRoot, dir.resolve("data-" + name), seeds, "30s")
                // A returning leg's few dirty regions copy in seconds, not milliseconds: the bar has time to move.
                + "weft.mirror.resync-rate = 1MiB\n";
    }

    NodeProcess start(String name, String hocon, int port) {
        try {
            NodeProcess n = NodeProcess.start(dir, name, 1, hocon, port);
            started.add(n);
            return n;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    void startClusterAndBrowser() throws Exception {
        for (Path tool : List.of(CHROMIUM, CHROMEDRIVER)) {
            assertTrue(Files.isExecutable(tool), tool + " is missing: the console's browser tests need Debian's "
                    + "packages `chromium` and `chromium-driver` (apt-get install chromium chromium-driver; "
                    + "./run-tests installs them)");
        }
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("console-" + ProcessHandle.current().pid()).toAbsolutePath();
        Path rootA = Files.createDirectories(dir.resolve("exports-a"));
        Path rootB = Files.createDirectories(dir.resolve("exports-b"));
        Path runDir = dir;
        reaper = new Thread(() -> NodeProcess.killAll(List.copyOf(started), runDir), "console-reaper");
        Runtime.getRuntime().addShutdownHook(reaper);
        long t0 = System.nanoTime();
        int portC = NodeProcess.freePort();
        int portA = NodeProcess.freePort();
        int portB = NodeProcess.freePort();
        List<String> seeds = List.of("127.0.0.1:" + portC, "127.0.0.1:" + portA, "127.0.0.1:" + portB);
        c = start("c", config("c", "client", null, seeds), portC);
        CompletableFuture<NodeProcess> startA = CompletableFuture.supplyAsync(() ->
                start("a", config("a", "storage", rootA, seeds), portA));
        CompletableFuture<NodeProcess> startB = CompletableFuture.supplyAsync(() ->
                start("b", config("b", "storage", rootB, seeds), portB));
        a = startA.get(3, TimeUnit.MINUTES);
        b = startB.get(3, TimeUnit.MINUTES);
        await("three members up", WAIT, () -> c.upMembers() == 3);
        for (Path root : List.of(rootA, rootB)) {
            try (RandomAccessFile f = new RandomAccessFile(root.resolve("m0.img").toFile(), "rw")) {
                f.setLength(LEG_SIZE);
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(rootA.resolve("vol1.img").toFile(), "rw")) {
            f.setLength(16L << 20);
        }
        HttpResponse<String> mapped = c.post("/weft/devices", "{\"id\":\"m0\",\"mode\":\"rw\",\"legs\":["
                + "{\"storage\":\"a\",\"path\":\"m0.img\"},{\"storage\":\"b\",\"path\":\"m0.img\"}]}");
        assertEquals(200, mapped.statusCode(), mapped.body());
        System.out.printf("[console] cluster up and m0 mapped in %.1f s%n", (System.nanoTime() - t0) / 1e9);

        service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort()
                .withLogFile(dir.resolve("chromedriver.log").toFile()).build();
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1360,1000", "--user-data-dir=" + dir.resolve("chromium-profile"));
        browser = new ChromeDriver(service, options);
        base = c.http().toString().replaceAll("/$", "");
        signInWithTheLink();
    }

    /** As an operator does: the one-time link (here asked of c with its token, as `weft node` prints one). */
    void signInWithTheLink() throws Exception {
        HttpResponse<String> link = c.post("/weft/sign-in-link", "{}");
        assertEquals(200, link.statusCode(), link.body());
        browser.get(json(link).get("url").asText());
        waiting(WAIT).until(d -> d.getCurrentUrl().replaceAll("#.*$", "").equals(base + "/")
                && d.manage().getCookies().stream().anyMatch(k -> k.getName().startsWith("weft-session-")));
    }

    @AfterAll
    void stopEverything() {
        if (browser != null) {
            browser.quit();
        }
        if (service != null) {
            service.stop();
        }
        if (dir != null) {
            System.out.printf("[console] ended node processes %s%n", NodeProcess.killAll(List.copyOf(started), dir));
        }
        if (reaper != null) {
            Runtime.getRuntime().removeShutdownHook(reaper);
        }
    }

    WebDriverWait waiting(Duration timeout) {
        WebDriverWait w = new WebDriverWait(browser, timeout, Duration.ofMillis(100));
        w.ignoring(org.openqa.selenium.StaleElementReferenceException.class);
        return w;
    }

    void open(String view) {
        browser.get(base + "/#" + view);
        waiting(WAIT).until(d -> d.findElement(By.id("view-" + view)).isDisplayed());
    }

    /** The view's screenshot into the directory -Dweft.console.screenshots names (not on ordinary runs). */
    void screenshot(String view) throws Exception {
        String to = System.getProperty("weft.console.screenshots", "");
        if (to.isBlank()) {
            return;
        }
        Path target = Files.createDirectories(Path.of(to)).resolve("console-" + view + ".png");
        File shot = ((TakesScreenshot) browser).getScreenshotAs(OutputType.FILE);
        Files.copy(shot.toPath(), target, StandardCopyOption.REPLACE_EXISTING);
        System.out.println("[console] screenshot " + target);
    }

    String text(String css) {
        return browser.findElement(By.cssSelector(css)).getText();
    }

    /** Confirms the page's confirmation dialog and returns its question. */
    String confirm() {
        WebElement dialog = waiting(WAIT).until(ExpectedConditions.visibilityOfElementLocated(By.id("confirm")));
        String question = dialog.findElement(By.id("confirm-text")).getText();
        browser.findElement(By.id("confirm-ok")).click();
        waiting(WAIT).until(ExpectedConditions.invisibilityOfElementLocated(By.id("confirm")));
        return question;
    }

    void fill(WebElement form, String name, String value) {
        WebElement field = form.findElement(By.name(name));
        field.clear();
        field.sendKeys(value);
    }

    void choose(WebElement form, String name, String value) {
        waiting(WAIT).until(d -> form.findElement(By.name(name)).findElements(By.tagName("option")).stream()
                .anyMatch(o -> o.getAttribute("value").equals(value)));
        new Select(form.findElement(By.name(name))).selectByValue(value);
    }

    @Test
    @Order(1)
    void theClusterViewListsEveryMemberWithWhatItOffers() throws Exception {
        open("cluster");
        Map<String, String> expected = Map.of("a", "storage | Up | yes | self=false",
                "b", "storage | Up | yes | self=false", "c", "client | Up | yes | self=true");
        Map<String, String> rows = new TreeMap<>();
        try {
            // Read inside the wait: the page redraws the table when the cluster changes.
            waiting(WAIT).until(d -> {
                rows.clear();
                for (WebElement row : d.findElements(By.cssSelector("#members tbody tr[data-member]"))) {
                    if (row.findElement(By.className("transports")).getText().equals("—")) {
                        return false; // that member's directory has not answered yet
                    }
                    rows.put(row.getAttribute("data-member"), row.findElement(By.className("roles")).getText()
                            + " | " + row.findElement(By.className("status")).getText() + " | "
                            + row.findElement(By.className("reachable")).getText() + " | self="
                            + row.getAttribute("class").contains("self"));
                }
                return rows.equals(expected);
            });
        } catch (org.openqa.selenium.TimeoutException e) {
            assertEquals(expected, rows, "the Cluster view's members");
        }
        String transportsOfA = text("#members tr[data-member=a] td.transports");
        assertTrue(transportsOfA.contains("rdma"), "a offers the transports it enabled: " + transportsOfA);
        String consoleOfB = text("#members tr[data-member=b] td.console");
        assertEquals(b.http().toString().replaceAll("/$", ""), consoleOfB.replaceAll("/$", ""),
                "each member tells its own console address");
        screenshot("cluster");
    }

    @Test
    @Order(2)
    void theDevicesViewShowsTheMirrorItsLegsAndLiveCharts() throws Exception {
        open("devices");
        WebElement m0 = waiting(WAIT).until(ExpectedConditions.visibilityOfElementLocated(
                By.cssSelector(".device[data-device=m0]")));
        waiting(WAIT).until(d -> m0.findElement(By.className("state")).getText().startsWith("ready")
                && m0.findElements(By.cssSelector("tr.leg[data-state=in-sync]")).size() == 2);
        String facts = m0.findElement(By.className("facts")).getText();
        assertTrue(facts.contains("64.0 MiB"), facts);
        assertTrue(facts.contains("a + b"), facts);
        assertTrue(facts.contains("nbd://127.0.0.1:"), "the export URI: " + facts);
        List<String> legs = m0.findElements(By.cssSelector("tr.leg")).stream()
                .map(r -> r.findElements(By.tagName("td")).get(1).getText()).toList();
        assertEquals(List.of("a:m0.img", "b:m0.img"), legs);
        // The charts are drawn from the node's samples ring: some samples have arrived.
        waiting(WAIT).until(d -> {
            Object n = ((org.openqa.selenium.JavascriptExecutor) d).executeScript(
                    "return (state.samples['m0'] || []).length");
            return n instanceof Number && ((Number) n).intValue() >= 2;
        });
        assertEquals(3, m0.findElements(By.cssSelector("canvas.chart")).size());
        screenshot("devices");
    }

    @Test
    @Order(3)
    void aMapDoneInThePageAppearsInTheApiAndInWeftStatus() throws Exception {
        open("actions");
        WebElement form = browser.findElement(By.id("form-map"));
        fill(form, "id", "vol1");
        choose(form, "storage1", "a");
        fill(form, "path1", "vol1.img");
        form.findElement(By.cssSelector("button[type=submit]")).click();
        String question = confirm();
        assertTrue(question.contains("vol1") && question.contains("a:vol1.img"), question);
        WebElement result = waiting(WAIT).until(ExpectedConditions.visibilityOfElementLocated(
                By.id("action-result")));
        waiting(WAIT).until(d -> !result.getText().isBlank());
        assertTrue(result.getAttribute("class").contains("ok"), result.getText());
        assertTrue(result.getText().contains("mapped vol1"), result.getText());

        HttpResponse<String> r = c.get("/weft/devices/vol1");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode vol1 = json(r);
        assertEquals("a", vol1.get("storageNode").asText());
        assertEquals("ready", vol1.get("state").asText());

        java.io.StringWriter out = new java.io.StringWriter();
        var cli = io.weft.node.cli.WeftMain.commandLine();
        cli.setOut(new java.io.PrintWriter(out, true));
        cli.setErr(new java.io.PrintWriter(out, true));
        int exit = cli.execute("status", "--node", c.ready.getProperty("http"), "--token",
                c.bearer().substring("Bearer ".length()));
        assertEquals(0, exit, out.toString());
        assertTrue(out.toString().contains("vol1"), "weft status lists the device mapped in the page:\n" + out);
        screenshot("actions");
    }

    @Test
    @Order(4)
    void aRefusalIsShownAsTheNodesOwnText() {
        open("actions");
        WebElement form = browser.findElement(By.id("form-map"));
        fill(form, "id", "vol1");
        choose(form, "storage1", "b");
        fill(form, "path1", "no-such.img");
        form.findElement(By.cssSelector("button[type=submit]")).click();
        confirm();
        WebElement result = browser.findElement(By.id("action-result"));
        waiting(WAIT).until(d -> result.getAttribute("class").contains("error"));
        String shown = result.getText();
        assertTrue(shown.startsWith("HTTP 4"), shown);
        assertTrue(shown.contains("vol1"), "the node's message names the device: " + shown);
    }

    @Test
    @Order(5)
    void aLegFrozenByADrillShowsDegradedThenResyncingWithTheBarMovingThenTheReport() throws Exception {
        open("drills");
        WebElement form = browser.findElement(By.id("form-drill"));
        choose(form, "device", "m0");
        new Select(form.findElement(By.name("fault"))).selectByValue("freeze");
        choose(form, "target", "b");
        fill(form, "workingSet", "4MiB"); // at most 4 dirty regions: about 4 s of resync at 1 MiB/s
        fill(form, "during", "2s");
        form.findElement(By.name("overwrite")).click();
        form.findElement(By.cssSelector("button[type=submit]")).click();
        String question = confirm();
        assertTrue(question.contains("OVERWRITES"), question);
        waiting(WAIT).until(d -> d.findElement(By.id("drill-message")).getAttribute("class").contains("ok"));

        open("devices");
        WebElement m0 = waiting(WAIT).until(ExpectedConditions.visibilityOfElementLocated(
                By.cssSelector(".device[data-device=m0]")));
        waiting(WAIT).until(d -> m0.findElement(By.className("mirror-summary")).getText().contains("degraded")
                && !m0.findElements(By.cssSelector("tr.leg[data-leg='1']:not([data-state=in-sync])")).isEmpty());
        System.out.println("[console] m0 degraded: " + m0.findElement(By.className("mirror-summary")).getText());
        // The returning leg resyncs at 1 MiB/s: the bar shows a percentage below 100, then a higher one.
        TreeSet<Integer> seen = new TreeSet<>();
        waiting(Duration.ofSeconds(90)).until(d -> {
            for (WebElement row : m0.findElements(
                    By.cssSelector("tr.leg[data-resyncing=''], tr.leg[data-resyncing=true]"))) {
                int percent = Integer.parseInt(row.findElement(By.className("bar")).getAttribute("data-percent"));
                if (percent < 100) {
                    seen.add(percent);
                }
            }
            return seen.size() >= 2;
        });
        System.out.println("[console] resync bar of m0 showed " + seen + " %");
        screenshotWhileResyncing();
        waiting(Duration.ofSeconds(120)).until(d -> m0.findElements(By.cssSelector("tr.leg[data-state=in-sync]"))
                .size() == 2 && m0.findElement(By.className("state")).getText().startsWith("ready"));

        open("drills");
        WebElement row = waiting(Duration.ofSeconds(120)).until(d -> {
            List<WebElement> rows = d.findElements(By.cssSelector("#drills tbody tr[data-drill]"));
            return !rows.isEmpty() && rows.get(0).findElement(By.className("phase")).getText().equals("done")
                    ? rows.get(0) : null;
        });
        row.click();
        waiting(WAIT).until(d -> d.findElement(By.id("drill-report")).isDisplayed()
                && d.findElement(By.id("drill-report-text")).getText().contains("intact"));
        assertEquals("yes", row.findElement(By.className("intact")).getText());
        String title = text("#drill-report-title");
        assertTrue(title.contains("every acknowledged write intact"), title);
        ((org.openqa.selenium.JavascriptExecutor) browser).executeScript(
                "document.getElementById('drills').scrollIntoView()");
        screenshot("drills");
    }

    private void screenshotWhileResyncing() throws Exception {
        screenshot("devices-resync");
    }

    @Test
    @Order(6)
    void aChangeWithoutCredentialsIsRefusedAndThePageAsksToSignIn() throws Exception {
        // Straight to the API, as a script or another site's page without the cookie or the token would.
        HttpResponse<String> raw = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest
                .newBuilder(c.http().resolve("/weft/devices/vol1/unmap")).header("Content-Type", "application/json")
                .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"force\":true}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(401, raw.statusCode(), raw.body());

        // The browser without its session: the page's unmap is refused, the node's words shown, vol1 stays.
        open("actions");
        WebElement form = browser.findElement(By.id("form-unmap"));
        choose(form, "device", "vol1");
        browser.manage().deleteAllCookies(); // the page stays, with what it read while signed in
        form.findElement(By.cssSelector("button[type=submit]")).click();
        confirm();
        WebElement result = browser.findElement(By.id("action-result"));
        waiting(WAIT).until(d -> result.getAttribute("class").contains("error"));
        assertTrue(result.getText().startsWith("HTTP 401"), result.getText());
        waiting(WAIT).until(ExpectedConditions.visibilityOfElementLocated(By.id("signin")));
        assertEquals(200, c.get("/weft/devices/vol1").statusCode(), "vol1 is still mapped");

        // Signing in with the token in the page's form opens a session again.
        WebElement signin = browser.findElement(By.id("signin"));
        fill(signin, "token", c.bearer().substring("Bearer ".length()));
        signin.findElement(By.cssSelector("button[type=submit]")).click();
        waiting(WAIT).until(ExpectedConditions.invisibilityOfElementLocated(By.id("signin")));
        assertTrue(browser.manage().getCookies().stream().anyMatch(k -> k.getName().startsWith("weft-session-")));
    }
}
