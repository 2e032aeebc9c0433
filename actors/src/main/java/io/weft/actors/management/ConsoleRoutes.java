package io.weft.actors.management;

import io.weft.actors.NodeServices;
import io.weft.actors.WeftRuntime;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.management.protocol.DescribeNode;
import io.weft.actors.management.protocol.NodeInfo;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Extension;
import org.apache.pekko.actor.ExtensionId;
import org.apache.pekko.actor.ExtensionIdProvider;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * The web console (docs/console.md): its static page at {@code /} and {@code /console/*} (plain HTML, CSS and
 * JavaScript from this jar's {@code console/} resources; they hold no data), and the two data routes only the console
 * needs: {@code GET /weft/cluster} (every member with what its {@link NodeDirectory} says) and the IO samples ring
 * ({@code GET /weft/samples}, {@code GET /weft/devices/{id}/samples}). Everything else the page reads and does goes
 * through {@link WeftHttpApi}'s routes, under the same rules as any other client: the data routes here are wrapped
 * in {@link ManagementAuth#authenticated} (token or console session), the static files in
 * {@link ManagementAuth#sameOrigin}. Registered with Pekko Management
 * next to {@link WeftRoutes} ({@code pekko.management.http.routes.weft-console}, weft-pekko.conf).
 */
public final class ConsoleRoutes extends AllDirectives implements ManagementRouteProvider, Extension {
    /** How long {@code /weft/cluster} waits for the members' directories; a silent member shows without details. */
    static final Duration DESCRIBE_TIMEOUT = Duration.ofSeconds(2);
    /** The page loads nothing from elsewhere, runs no inline script and may not be framed. */
    private static final String CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; "
            + "style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'";

    /** The extension id Pekko Management instantiates from the config. */
    public static final class Provider extends AbstractExtensionId<ConsoleRoutes> implements ExtensionIdProvider {
        public static final Provider INSTANCE = new Provider();

        @Override
        public ExtensionId<ConsoleRoutes> lookup() {
            return INSTANCE;
        }

        @Override
        public ConsoleRoutes createExtension(ExtendedActorSystem system) {
            return new ConsoleRoutes(system);
        }
    }

    /** Compact: the samples ring is the page's largest answer (600 samples per device). */
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
            new com.fasterxml.jackson.databind.ObjectMapper();

    private final ExtendedActorSystem system;

    ConsoleRoutes(ExtendedActorSystem system) {
        this.system = system;
    }

    @Override
    public Route routes(ManagementRouteProviderSettings settings) {
        ManagementAuth auth = ManagementAuth.of(system);
        return concat(
                // The files reveal nothing (no data, no token): only the Host/Origin rules. The page then signs in
                // (cookie from the one-time link, or POST /login with the token) and reads through the API.
                pathSingleSlash(() -> get(() -> auth.sameOrigin(() -> staticHeaders(() ->
                        getFromResource("console/index.html"))))),
                pathPrefix("console", () -> get(() -> auth.sameOrigin(() -> staticHeaders(() ->
                        getFromResourceDirectory("console"))))),
                // The data routes: the same token or session as every other /weft route.
                pathPrefix("weft", () -> auth.authenticated(() -> withRuntime(rt -> concat(
                        path("cluster", () -> get(() -> onSuccess(cluster(rt), list -> json(StatusCodes.OK, list)))),
                        path("samples", () -> get(() -> since(after -> json(StatusCodes.OK, samples(rt, after))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("samples"), id ->
                                get(() -> since(after -> rt.state().device(id) == null
                                        ? json(StatusCodes.NOT_FOUND, io.weft.actors.Reply.error("no device " + id))
                                        : json(StatusCodes.OK, deviceSamples(rt, id, after))))))))));
    }

    private Route staticHeaders(java.util.function.Supplier<Route> inner) {
        return respondWithHeaders(List.of(RawHeader.create("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                RawHeader.create("X-Content-Type-Options", "nosniff"), RawHeader.create("Cache-Control", "no-cache")),
                inner);
    }

    private Route withRuntime(Function<WeftRuntime, Route> inner) {
        return extractRequest(req -> WeftRuntime.of(system)
                .map(inner)
                .orElseGet(() -> json(StatusCodes.SERVICE_UNAVAILABLE,
                        io.weft.actors.Reply.error("weft node is starting or stopping"))));
    }

    /** {@code ?since=<epoch millis>}: only samples taken after it (the page asks for what it has not seen yet). */
    private Route since(Function<Long, Route> inner) {
        return parameterOptional("since", since -> {
            long after;
            try {
                after = since.map(Long::parseLong).orElse(0L);
            } catch (NumberFormatException e) {
                return json(StatusCodes.BAD_REQUEST, io.weft.actors.Reply.error(
                        "since must be a time in epoch milliseconds: " + since.get()));
            }
            return inner.apply(after);
        });
    }

    static Map<String, Object> samples(WeftRuntime rt, long after) {
        DeviceSampler sampler = rt.samples();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("node", rt.nodeName());
        out.put("intervalMillis", sampler.interval().toMillis());
        out.put("capacity", sampler.capacity());
        out.put("now", System.currentTimeMillis());
        Map<String, List<DeviceSampler.Sample>> devices = new java.util.TreeMap<>();
        for (var e : rt.state().devices()) {
            devices.put(e.spec.deviceId(), sampler.samples(e.spec.deviceId(), after));
        }
        out.put("devices", devices);
        return out;
    }

    static Map<String, Object> deviceSamples(WeftRuntime rt, String id, long after) {
        DeviceSampler sampler = rt.samples();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("device", id);
        out.put("intervalMillis", sampler.interval().toMillis());
        out.put("capacity", sampler.capacity());
        out.put("now", System.currentTimeMillis());
        out.put("samples", sampler.samples(id, after));
        return out;
    }

    /** One cluster member as the Cluster view shows it. */
    public record MemberView(String name, String address, List<String> roles, String status, boolean reachable,
                             List<String> transports, String console, int incarnation, boolean self) {
    }

    /**
     * Every member this node's cluster state has (status, reachability, roles) joined with what its directory says
     * (name, transports, console address); a member whose directory does not answer in time shows without them.
     */
    CompletionStage<List<MemberView>> cluster(WeftRuntime rt) {
        var typed = rt.system();
        List<CompletableFuture<NodeInfo>> asks = new ArrayList<>();
        for (var located : ClusterDirectory.snapshot(typed).find(NodeServices.NODE_DIRECTORY)) {
            asks.add(AskPattern.<NodeDirectory.Command, NodeInfo>ask(located.ref(), DescribeNode::new,
                    DESCRIBE_TIMEOUT, typed.scheduler()).toCompletableFuture().exceptionally(t -> null));
        }
        return CompletableFuture.allOf(asks.toArray(new CompletableFuture<?>[0])).thenApply(v -> {
            Map<String, NodeInfo> byAddress = new HashMap<>();
            for (var ask : asks) {
                NodeInfo info = ask.join();
                if (info != null) {
                    byAddress.put(info.address(), info);
                }
            }
            return members(byAddress);
        });
    }

    private List<MemberView> members(Map<String, NodeInfo> byAddress) {
        Cluster cluster = Cluster.get(system);
        var state = cluster.state();
        List<MemberView> out = new ArrayList<>();
        for (Member m : state.getMembers()) {
            String address = m.address().toString();
            Optional<NodeInfo> info = Optional.ofNullable(byAddress.get(address));
            List<String> roles = m.getRoles().stream().filter(r -> !ClusterDirectory.isInternalRole(r)).sorted()
                    .toList();
            out.add(new MemberView(info.map(NodeInfo::name).orElse(""), address, roles, m.status().toString(),
                    !state.getUnreachable().contains(m), info.map(NodeInfo::transports).orElse(List.of()),
                    info.map(NodeInfo::console).orElse(""), info.map(NodeInfo::incarnation).orElse(0),
                    m.address().equals(cluster.selfAddress())));
        }
        out.sort(java.util.Comparator.comparing(MemberView::name).thenComparing(MemberView::address));
        return out;
    }

    private Route json(StatusCode code, Object value) {
        try {
            return complete(HttpResponse.create().withStatus(code).withEntity(HttpEntities.create(
                    ContentTypes.APPLICATION_JSON, JSON.writeValueAsString(value))));
        } catch (java.io.IOException e) {
            return complete(StatusCodes.INTERNAL_SERVER_ERROR, e.toString());
        }
    }
}
