package io.weft.actors.management;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.actors.WeftRuntime;
import java.net.InetAddress;
import java.net.URI;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Cookie;
import org.apache.pekko.http.javadsl.model.headers.HttpCookie;
import org.apache.pekko.http.javadsl.model.headers.HttpCookiePair;
import org.apache.pekko.http.javadsl.model.headers.Location;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.model.headers.SameSite;
import org.apache.pekko.http.javadsl.model.headers.SetCookie;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;

/**
 * Who may use a node's management HTTP routes (docs/security.md, "Management"; docs/http-api.md, "Authentication").
 *
 * <p>Wrap every route that changes state or reveals ids in {@link #authenticated}: it lets a request through only
 * when
 * <ol>
 *   <li>its {@code Host} is this node's management name (the bound address; {@code localhost} when bound to loopback;
 *       any IP literal when bound to every address; names in {@code weft.management.http.allowed-hosts}) —
 *       against DNS rebinding;</li>
 *   <li>it has no foreign {@code Origin} (nor {@code Sec-Fetch-Site: cross-site}) — against cross-site requests;</li>
 *   <li>a POST/PUT/PATCH/DELETE says {@code Content-Type: application/json} — a web page cannot send that without a
 *       CORS preflight, which this server never answers;</li>
 *   <li>it carries the node's token ({@code Authorization: Bearer}) or a console session cookie
 *       ({@link SignIn}).</li>
 * </ol>
 * Refusals are JSON {@code {"ok": false, "message", "error"}}: 403 (Host, Origin), 415 (Content-Type), 401 (no or
 * wrong credentials), 503 (the node has no token yet, or is starting or stopping).
 *
 * <p>For the web console: {@code ManagementAuth.of(system).authenticated(() -> dataRoutes)}; static files that reveal
 * nothing may go unwrapped, or in {@link #sameOrigin} to keep the Host rule. {@link #signInRoutes} serves
 * {@code GET /login?code=...} (one-time link → cookie → redirect to {@code /}) and {@code POST /login}
 * ({@code {"token": "..."}}).
 */
public final class ManagementAuth extends AllDirectives {
    private final ActorSystem system;
    private final String hostname;
    private final List<String> allowedHosts;

    private ManagementAuth(ActorSystem system) {
        this.system = system;
        var config = system.settings().config();
        this.hostname = config.getString("weft.management.http.hostname");
        this.allowedHosts = config.getStringList("weft.management.http.allowed-hosts").stream()
                .map(h -> h.toLowerCase(Locale.ROOT)).toList();
    }

    /** The rules of the node whose actor system serves the routes (any incarnation). */
    public static ManagementAuth of(ActorSystem system) {
        return new ManagementAuth(system);
    }

    /** Host, Origin and Content-Type rules plus the token or a session; see the class comment. */
    public Route authenticated(Supplier<Route> inner) {
        return extractRequest(req -> {
            Optional<WeftRuntime> rt = WeftRuntime.of(system);
            if (rt.isEmpty()) {
                return refuse(StatusCodes.SERVICE_UNAVAILABLE, "weft node is starting or stopping");
            }
            Optional<Route> refused = checkRequest(rt.get(), req);
            if (refused.isPresent()) {
                return refused.get();
            }
            if (hasValidSession(rt.get(), req)) {
                return inner.get();
            }
            ManagementToken token = rt.get().managementToken();
            Optional<String> bearer = bearer(req);
            if (token.current().isEmpty()) {
                return refuse(StatusCodes.SERVICE_UNAVAILABLE, "this node has no management token yet: it "
                        + "receives the cluster's from the oldest member once it has joined; try again in a moment");
            }
            if (bearer.isEmpty()) {
                return unauthorized("this route needs 'Authorization: Bearer <token>' (the node's management token:"
                        + " <data-dir>/" + ManagementToken.FILE_NAME + ", weft.management.http.token; the CLI on "
                        + "the node's host finds it by itself)");
            }
            if (!token.matches(bearer.get())) {
                return unauthorized("wrong management token");
            }
            return inner.get();
        });
    }

    /** Only the Host and Origin rules (for routes that reveal nothing, e.g. the console's static files). */
    public Route sameOrigin(Supplier<Route> inner) {
        return extractRequest(req -> {
            Optional<WeftRuntime> rt = WeftRuntime.of(system);
            if (rt.isEmpty()) {
                return refuse(StatusCodes.SERVICE_UNAVAILABLE, "weft node is starting or stopping");
            }
            return checkHostAndOrigin(rt.get(), req).orElseGet(inner);
        });
    }

    /**
     * {@code GET /login?code=CODE}: a one-time sign-in link ({@link SignIn#newCode}) opens a session (cookie
     * {@code weft-session-<port>}, {@code HttpOnly}, {@code SameSite=Strict}, {@code Path=/}) and redirects to
     * {@code /}. Without {@code code} the route passes (a console may serve its sign-in page there).
     * {@code POST /login} with {@code {"token": "..."}} does the same for a sign-in page (answers 200 with the cookie).
     * {@code POST /logout} ends the session.
     */
    public Route signInRoutes() {
        return concat(
                path("login", () -> concat(
                        get(() -> parameterOptional("code", code -> code.isEmpty() ? reject()
                                : extractRequest(req -> withRuntime(rt -> signInWithCode(rt, req, code.get()))))),
                        post(() -> extractRequest(req -> withRuntime(rt -> signInWithToken(rt, req)))))),
                path("logout", () -> post(() -> extractRequest(req -> withRuntime(rt -> signOut(rt, req))))));
    }

    private Route signInWithCode(WeftRuntime rt, HttpRequest req, String code) {
        Optional<Route> refused = checkHostAndOrigin(rt, req);
        if (refused.isPresent()) {
            return refused.get();
        }
        if (!rt.signIn().redeem(code)) {
            return refuse(StatusCodes.UNAUTHORIZED, "this sign-in link is not valid (used already, expired, or "
                    + "from another start of the node); sign in with the token (POST /login) or ask the node for a "
                    + "new link (POST /weft/sign-in-link)");
        }
        return complete(HttpResponse.create().withStatus(StatusCodes.SEE_OTHER)
                .addHeader(Location.create("/"))
                .addHeader(sessionCookie(rt, rt.signIn().newSession())));
    }

    private Route signInWithToken(WeftRuntime rt, HttpRequest req) {
        Optional<Route> refused = checkRequest(rt, req);
        if (refused.isPresent()) {
            return refused.get();
        }
        return entity(Unmarshaller.entityToString(), text -> {
            String given;
            try {
                JsonNode body = WeftHttpApi.JSON.readTree(text.isBlank() ? "{}" : text);
                given = body.path("token").asText("");
            } catch (java.io.IOException e) {
                return refuse(StatusCodes.BAD_REQUEST, "malformed JSON: " + e.getMessage());
            }
            if (!rt.managementToken().matches(given)) {
                return unauthorized("wrong management token");
            }
            return complete(HttpResponse.create().withStatus(StatusCodes.OK)
                    .addHeader(sessionCookie(rt, rt.signIn().newSession()))
                    .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON,
                            "{\"ok\":true,\"message\":\"signed in\"}")));
        });
    }

    private Route signOut(WeftRuntime rt, HttpRequest req) {
        Optional<Route> refused = checkRequest(rt, req);
        if (refused.isPresent()) {
            return refused.get();
        }
        sessionOf(rt, req).ifPresent(rt.signIn()::end);
        return complete(HttpResponse.create().withStatus(StatusCodes.OK)
                .addHeader(SetCookie.create(HttpCookie.create(SignIn.cookieName(port(rt)), "")
                        .withPath("/").withHttpOnly(true).withSameSite(SameSite.Strict).withMaxAge(0)))
                .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON,
                        "{\"ok\":true,\"message\":\"signed out\"}")));
    }

    private Route withRuntime(java.util.function.Function<WeftRuntime, Route> inner) {
        return WeftRuntime.of(system).map(inner)
                .orElseGet(() -> refuse(StatusCodes.SERVICE_UNAVAILABLE, "weft node is starting or stopping"));
    }

    private static SetCookie sessionCookie(WeftRuntime rt, String session) {
        return SetCookie.create(HttpCookie.create(SignIn.cookieName(port(rt)), session)
                .withPath("/").withHttpOnly(true).withSameSite(SameSite.Strict));
    }

    private static int port(WeftRuntime rt) {
        return rt.httpUri().map(URI::getPort).orElse(0);
    }

    // ------------------------------------------------------------------ the rules

    /** Host, Origin, then (for methods with a body) Content-Type; empty when the request passes. */
    Optional<Route> checkRequest(WeftRuntime rt, HttpRequest req) {
        Optional<Route> refused = checkHostAndOrigin(rt, req);
        if (refused.isPresent()) {
            return refused;
        }
        var method = req.method();
        boolean withBody = method.equals(HttpMethods.POST) || method.equals(HttpMethods.PUT)
                || method.equals(HttpMethods.PATCH) || method.equals(HttpMethods.DELETE);
        if (withBody && !req.entity().getContentType().mediaType().equals(MediaTypes.APPLICATION_JSON)) {
            String given = req.getHeader("Content-Type").map(HttpHeader::value).orElse("none");
            return Optional.of(refuse(StatusCodes.UNSUPPORTED_MEDIA_TYPE, method.name() + " needs 'Content-Type: "
                    + "application/json' (got " + given + "): a web page cannot send that to this node without a "
                    + "CORS preflight, which is how the node tells a script from a cross-site request"));
        }
        return Optional.empty();
    }

    private Optional<Route> checkHostAndOrigin(WeftRuntime rt, HttpRequest req) {
        Optional<String> host = req.getHeader("Host").map(HttpHeader::value).map(ManagementAuth::hostPart);
        if (host.isEmpty() || host.get().isEmpty()) {
            return Optional.of(refuse(StatusCodes.FORBIDDEN, "request without a Host header refused"));
        }
        if (!allowedHost(host.get())) {
            return Optional.of(refuse(StatusCodes.FORBIDDEN, "Host '" + host.get() + "' is not this node's "
                    + "management address (" + hostname + "); add the name to weft.management.http.allowed-hosts "
                    + "if you reach the node under it (refused against DNS rebinding)"));
        }
        Optional<String> origin = req.getHeader("Origin").map(HttpHeader::value);
        if (origin.isPresent() && !sameOrigin(origin.get(), port(rt))) {
            return Optional.of(refuse(StatusCodes.FORBIDDEN, "cross-origin request refused: Origin '"
                    + origin.get() + "' is not this node's management address (CSRF protection)"));
        }
        Optional<String> fetchSite = req.getHeader("Sec-Fetch-Site").map(HttpHeader::value);
        if (fetchSite.isPresent() && fetchSite.get().equalsIgnoreCase("cross-site")) {
            return Optional.of(refuse(StatusCodes.FORBIDDEN, "cross-site request refused (Sec-Fetch-Site: "
                    + "cross-site; CSRF protection)"));
        }
        return Optional.empty();
    }

    /** The host of a Host header value: {@code name[:port]} or {@code [v6][:port]}, lower case. */
    static String hostPart(String value) {
        String v = value.strip().toLowerCase(Locale.ROOT);
        if (v.startsWith("[")) {
            int close = v.indexOf(']');
            return close < 0 ? v : v.substring(1, close);
        }
        int colon = v.indexOf(':');
        return colon < 0 ? v : v.substring(0, colon);
    }

    boolean allowedHost(String host) {
        String bound = hostname.toLowerCase(Locale.ROOT);
        if (bound.startsWith("[") && bound.endsWith("]")) {
            bound = bound.substring(1, bound.length() - 1);
        }
        if (host.equals(bound) || allowedHosts.contains(host) || allowedHosts.contains("*")) {
            return true;
        }
        boolean wildcard = bound.equals("0.0.0.0") || bound.equals("::") || bound.isEmpty();
        boolean loopback = bound.equals("localhost") || isLoopbackLiteral(bound);
        if ((loopback || wildcard) && (host.equals("localhost") || isLoopbackLiteral(host))) {
            return true;
        }
        // A DNS-rebinding page always names the attacker's domain: an IP literal cannot be one.
        return wildcard && isIpLiteral(host);
    }

    private boolean sameOrigin(String origin, int port) {
        URI uri;
        try {
            uri = URI.create(origin.strip());
        } catch (IllegalArgumentException e) {
            return false;
        }
        if (uri.getHost() == null || !("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))) {
            return false; // includes "null" (sandboxed frames, file: pages)
        }
        int originPort = uri.getPort() >= 0 ? uri.getPort() : "https".equals(uri.getScheme()) ? 443 : 80;
        return originPort == port && allowedHost(hostPart(uri.getHost()));
    }

    static boolean isIpLiteral(String host) {
        return host.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}") || (host.contains(":") && host.matches("[0-9a-f:.]+"));
    }

    static boolean isLoopbackLiteral(String host) {
        if (!isIpLiteral(host)) {
            return false;
        }
        try {
            return InetAddress.getByName(host).isLoopbackAddress(); // a literal: no DNS lookup
        } catch (java.net.UnknownHostException e) {
            return false;
        }
    }

    private static Optional<String> bearer(HttpRequest req) {
        Optional<String> auth = req.getHeader("Authorization").map(HttpHeader::value);
        if (auth.isEmpty() || auth.get().length() < 7 || !auth.get().regionMatches(true, 0, "Bearer ", 0, 7)) {
            return Optional.empty();
        }
        return Optional.of(auth.get().substring(7).strip());
    }

    private static Optional<String> sessionOf(WeftRuntime rt, HttpRequest req) {
        String name = SignIn.cookieName(port(rt));
        for (HttpHeader h : req.getHeaders()) {
            if (h instanceof Cookie cookie) {
                for (HttpCookiePair pair : cookie.getCookies()) {
                    if (pair.name().equals(name)) {
                        return Optional.of(pair.value());
                    }
                }
            }
        }
        return Optional.empty();
    }

    private static boolean hasValidSession(WeftRuntime rt, HttpRequest req) {
        return sessionOf(rt, req).filter(rt.signIn()::valid).isPresent();
    }

    private Route unauthorized(String message) {
        return complete(response(StatusCodes.UNAUTHORIZED, message)
                .addHeader(RawHeader.create("WWW-Authenticate", "Bearer realm=\"weft\"")));
    }

    private Route refuse(StatusCode code, String message) {
        return complete(response(code, message));
    }

    static HttpResponse response(StatusCode code, String message) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("ok", false);
        body.put("message", message);
        body.put("error", message);
        String json;
        try {
            json = WeftHttpApi.JSON.writeValueAsString(body);
        } catch (java.io.IOException e) {
            json = "{\"ok\":false}";
        }
        return HttpResponse.create().withStatus(code)
                .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, json));
    }
}
