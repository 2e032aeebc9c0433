package io.weft.actors.management;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftRuntime;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.json.JsonBodies;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * Weft's HTTP API under {@code /weft/} plus Prometheus text at {@code /metrics} (see docs/http-api.md).
 * Reads come from {@link NodeState}; mutations go to the actors through {@link WeftRuntime} and answer with the
 * actors' {@link Reply}. Every route here needs the node's management token or a console session, and obeys the
 * Host, Origin and Content-Type rules ({@link ManagementAuth}); {@code /login} signs a browser in.
 */
public final class WeftHttpApi extends AllDirectives implements ManagementRouteProvider {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final ExtendedActorSystem system;

    WeftHttpApi(ExtendedActorSystem system) {
        this.system = system;
    }

    @Override
    public Route routes(ManagementRouteProviderSettings settings) {
        ManagementAuth auth = ManagementAuth.of(system);
        return concat(
                auth.signInRoutes(),
                path("metrics", () -> auth.authenticated(() -> get(() -> withRuntime(rt -> complete(
                        HttpResponse.create().withEntity(HttpEntities.create(ContentTypes.TEXT_PLAIN_UTF8,
                                PrometheusText.render(rt)))))))),
                pathPrefix("weft", () -> auth.authenticated(() -> withRuntime(rt -> concat(
                        // A new one-time console sign-in link (the one printed at start works once).
                        path("sign-in-link", () -> post(() -> mutating(rt, body -> json(StatusCodes.OK,
                                Map.of("url", signInLink(rt)))))),
                        path("node", () -> get(() -> json(StatusCodes.OK, node(rt)))),
                        path("devices", () -> concat(
                                get(() -> json(StatusCodes.OK, rt.state().devices().stream()
                                        .map(NodeState.DeviceEntry::status).toList())),
                                post(() -> mutating(rt, body -> map(rt, body))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()), id ->
                                get(() -> {
                                    NodeState.DeviceEntry e = rt.state().device(id);
                                    return e == null ? error(StatusCodes.NOT_FOUND, "no device " + id)
                                            : json(StatusCodes.OK, e.status());
                                })),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("unmap"), id ->
                                post(() -> mutating(rt, body -> reply(rt.unmap(id,
                                        JsonBodies.read(body, HttpBodies.UnmapBody.class).forced()))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("remap"), id ->
                                post(() -> mutating(rt, body -> reply(rt.remap(id))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("compare-legs"), id ->
                                post(() -> mutating(rt, body -> compareLegs(rt, id, body)))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("probe"), id ->
                                post(() -> mutating(rt, body -> onComplete(rt.probe(id), r -> {
                                    if (r.isFailure() || r.get() == null) {
                                        return error(StatusCodes.NOT_FOUND, "no device " + id + " on this node");
                                    }
                                    return json(StatusCodes.OK, r.get());
                                })))),
                        // Mirror legs (docs/http-api.md "Mirror legs"): add one, remove or resync one by index.
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("legs"), id ->
                                post(() -> mutating(rt, body -> legRoute(() -> legReply(rt.addLeg(id,
                                        leg(JsonBodies.read(body, HttpBodies.LegBody.class)))))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("legs")
                                .slash(PathMatchers.segment()).slash("remove"), (id, index) ->
                                post(() -> mutating(rt, body -> legRoute(() ->
                                        legReply(rt.removeLeg(id, legIndex(index))))))),
                        path(PathMatchers.segment("devices").slash(PathMatchers.segment()).slash("legs")
                                .slash(PathMatchers.segment()).slash("resync"), (id, index) ->
                                post(() -> mutating(rt, body -> legRoute(() ->
                                        legReply(rt.resyncLeg(id, legIndex(index),
                                                JsonBodies.read(body, HttpBodies.ResyncBody.class).isFull())))))),
                        path("sessions", () -> get(() -> json(StatusCodes.OK, rt.state().devices().stream()
                                .map(NodeState.DeviceEntry::sessionStatus).toList()))),
                        path("backends", () -> get(() -> json(StatusCodes.OK, rt.state().backends().stream()
                                .map(NodeState.BackendEntry::status).toList()))),
                        path(PathMatchers.segment("backends").slash("resize"), () ->
                                post(() -> mutating(rt, body -> resize(rt, body)))),
                        path("volumes", () -> concat(
                                get(() -> json(StatusCodes.OK, volumes(rt))),
                                post(() -> mutating(rt, body -> createVolume(rt, body))))),
                        path("storage-nodes", () -> get(() -> onSuccess(rt.storageNodes(),
                                nodes -> json(StatusCodes.OK, nodes)))),
                        // ---- drills (issue 6, docs/drills.md)
                        path("drills", () -> concat(
                                get(() -> onSuccess(rt.drills(), list -> json(StatusCodes.OK, list))),
                                post(() -> mutating(rt, body -> startDrill(rt, body))))),
                        path(PathMatchers.segment("drills").slash(PathMatchers.segment()), id ->
                                get(() -> onSuccess(rt.drill(id), found -> found
                                        .map(st -> json(StatusCodes.OK, st))
                                        .orElseGet(() -> drillError(StatusCodes.NOT_FOUND, "no drill " + id
                                                + " on node " + rt.nodeName()))))),
                        // ---- end drills
                        path("transports", () -> get(() -> json(StatusCodes.OK, Map.of("enabled", rt.transports(),
                                "default", rt.settings().defaultTransport())))))))));
    }

    /** {@code http://HOST:PORT/login?code=...}: signs a browser in once (docs/http-api.md, "Authentication"). */
    public static String signInLink(WeftRuntime rt) {
        java.net.URI base = rt.httpUri().orElseThrow(() -> new IllegalStateException("management HTTP is off"));
        String host = base.getHost();
        if (host != null && (host.equals("0.0.0.0") || host.equals("[::]") || host.equals("::"))) {
            host = "127.0.0.1"; // bound to every address: the operator's browser is on this host
        }
        return "http://" + host + ":" + base.getPort() + "/login?code=" + rt.signIn().newCode();
    }

    private Route withRuntime(Function<WeftRuntime, Route> inner) {
        // Looked up per request: the runtime registers itself after Pekko Management has built the routes.
        return extractRequest(req -> WeftRuntime.of(system)
                .map(inner)
                .orElseGet(() -> error(StatusCodes.SERVICE_UNAVAILABLE, "weft node is starting or stopping")));
    }

    /** A POST (already authenticated by {@link ManagementAuth}): parses the JSON body, turns bad input into 400. */
    private Route mutating(WeftRuntime rt, Function<JsonNode, Route> handler) {
        return entity(Unmarshaller.entityToString(), text -> {
            JsonNode body;
            try {
                body = text.isBlank() ? JSON.createObjectNode() : JSON.readTree(text);
                if (!body.isObject()) {
                    return error(StatusCodes.BAD_REQUEST, "body must be a JSON object");
                }
                return handler.apply(body);
            } catch (IllegalArgumentException e) {
                return error(StatusCodes.BAD_REQUEST, e.getMessage());
            } catch (java.io.IOException e) {
                return error(StatusCodes.BAD_REQUEST, "malformed JSON: " + e.getMessage());
            }
        });
    }

    private Route map(WeftRuntime rt, JsonNode json) {
        HttpBodies.MapBody body = JsonBodies.read(json, HttpBodies.MapBody.class);
        String id = JsonBodies.required(body.id(), "id");
        AccessMode mode = AccessMode.parse(body.modeOrDefault());
        MapSpec spec;
        if (body.legs() != null) {
            // A mirrored device: "legs": [{"storage": "a", "path": "x.img"}, ...]
            List<MapSpec.Leg> legs = body.legs().stream()
                    .map(leg -> new MapSpec.Leg(leg.storageOrEmpty(), leg.pathOrEmpty())).toList();
            spec = MapSpec.mirrored(id, legs, mode, body.transportOrDefault());
        } else {
            spec = new MapSpec(id, JsonBodies.required(body.storageNode(), "storageNode"),
                    JsonBodies.required(body.path(), "path"), mode, body.transportOrDefault());
        }
        return reply(rt.map(spec));
    }

    private static MapSpec.Leg leg(HttpBodies.LegBody body) {
        return new MapSpec.Leg(JsonBodies.required(body.storage(), "storage"),
                JsonBodies.required(body.path(), "path"));
    }

    private Route resize(WeftRuntime rt, JsonNode json) {
        HttpBodies.VolumeBody body = JsonBodies.read(json, HttpBodies.VolumeBody.class);
        return reply(rt.resize(JsonBodies.required(body.storageNode(), "storageNode"),
                JsonBodies.required(body.path(), "path"), body.sizeOr(-1)));
    }

    private Route createVolume(WeftRuntime rt, JsonNode json) {
        HttpBodies.VolumeBody body = JsonBodies.read(json, HttpBodies.VolumeBody.class);
        return reply(rt.createVolume(JsonBodies.required(body.storageNode(), "storageNode"),
                JsonBodies.required(body.path(), "path"), body.sizeOr(0)));
    }

    private Route reply(CompletionStage<Reply> stage) {
        return onComplete(stage, result -> {
            if (result.isFailure()) {
                return error(StatusCodes.GATEWAY_TIMEOUT, "no answer in time: " + result.failed().get().getMessage());
            }
            Reply r = result.get();
            if (r.ok()) {
                return json(StatusCodes.OK, r);
            }
            StatusCode code = r.message().startsWith("no device") ? StatusCodes.NOT_FOUND : StatusCodes.CONFLICT;
            return json(code, r);
        });
    }

    /** Bad input of a leg route → 400 in the leg routes' error shape. */
    private Route legRoute(java.util.function.Supplier<Route> route) {
        try {
            return route.get();
        } catch (IllegalArgumentException e) {
            return legError(StatusCodes.BAD_REQUEST, e.getMessage());
        }
    }

    /** Like {@link #reply}, with "no leg N" also a 404. */
    private Route legReply(CompletionStage<Reply> stage) {
        return onComplete(stage, result -> {
            if (result.isFailure()) {
                return legError(StatusCodes.GATEWAY_TIMEOUT, "no answer in time: "
                        + result.failed().get().getMessage());
            }
            Reply r = result.get();
            if (r.ok()) {
                return json(StatusCodes.OK, r);
            }
            boolean missing = r.message().startsWith("no device") || r.message().startsWith("no leg");
            return legError(missing ? StatusCodes.NOT_FOUND : StatusCodes.CONFLICT, r.message());
        });
    }

    /** The API's {@code {"ok": false, "message"}} plus the contract's {@code "error"} (CONTRACT-drills.md). */
    private Route legError(StatusCode code, String message) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("ok", false);
        body.put("message", message);
        body.put("error", message);
        return json(code, body);
    }

    static int legIndex(String segment) {
        try {
            int index = Integer.parseInt(segment);
            if (index >= 0) {
                return index;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("leg index must be a number >= 0 (see legs[].index of the device): "
                + segment);
    }

    // ---- drills (issue 6)

    private Route startDrill(WeftRuntime rt, JsonNode body) {
        io.weft.actors.drill.DrillRequest request;
        try {
            request = io.weft.actors.drill.DrillRequest.fromJson(body);
        } catch (IllegalArgumentException e) {
            return drillError(StatusCodes.BAD_REQUEST, e.getMessage());
        }
        return onComplete(rt.startDrill(request), result -> {
            if (result.isFailure()) {
                return drillError(StatusCodes.GATEWAY_TIMEOUT, "no answer in time: "
                        + result.failed().get().getMessage());
            }
            if (result.get() instanceof io.weft.actors.drill.DrillService.Refused refused) {
                return drillError(StatusCodes.get(refused.httpStatus()), refused.message());
            }
            io.weft.actors.drill.DrillStatus st = ((io.weft.actors.drill.DrillService.Started) result.get()).status();
            Map<String, Object> accepted = new LinkedHashMap<>();
            accepted.put("id", st.id());
            accepted.put("device", st.device());
            accepted.put("fault", st.fault());
            accepted.put("target", st.target());
            accepted.put("phase", st.phase());
            return json(StatusCodes.ACCEPTED, accepted);
        });
    }

    /** {@code POST /weft/devices/{id}/compare-legs}: {"length": size or "all"} (default 64 MiB or the device). */
    private Route compareLegs(WeftRuntime rt, String id, JsonNode body) {
        long length;
        try {
            length = JsonBodies.read(body, HttpBodies.CompareLegsBody.class).lengthBytes();
        } catch (IllegalArgumentException e) {
            return drillError(StatusCodes.BAD_REQUEST, e.getMessage());
        }
        return onComplete(rt.compareLegs(id, length), result -> {
            if (result.isFailure()) {
                return drillError(StatusCodes.GATEWAY_TIMEOUT, "no answer in time: "
                        + result.failed().get().getMessage());
            }
            if (result.get() instanceof io.weft.actors.drill.DrillService.Refused refused) {
                return drillError(StatusCodes.get(refused.httpStatus()), refused.message());
            }
            return json(StatusCodes.OK, ((io.weft.actors.drill.DrillService.Compared) result.get()).toMap());
        });
    }

    /** The drill routes' error shape: {@code {"error": "..."}} (plus "message", as the other routes say it). */
    private Route drillError(StatusCode code, String message) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("error", message);
        out.put("message", message);
        return json(code, out);
    }

    // ---- end drills

    private Route json(StatusCode code, Object value) {
        try {
            return complete(HttpResponse.create().withStatus(code)
                    .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, JSON.writeValueAsString(value))));
        } catch (java.io.IOException e) {
            return complete(StatusCodes.INTERNAL_SERVER_ERROR, e.toString());
        }
    }

    private Route error(StatusCode code, String message) {
        return json(code, Reply.error(message));
    }

    private Map<String, Object> node(WeftRuntime rt) {
        Map<String, Object> out = new LinkedHashMap<>();
        Cluster cluster = Cluster.get(system);
        out.put("name", rt.nodeName());
        out.put("address", cluster.selfAddress().toString());
        out.put("roles", rt.settings().roles());
        out.put("status", cluster.selfMember().status().toString());
        List<Map<String, String>> members = new java.util.ArrayList<>();
        cluster.state().getMembers().forEach(m -> members.add(Map.of("address", m.address().toString(),
                "status", m.status().toString(), "roles", String.join(",", m.getRoles().stream()
                        .filter(r -> !r.startsWith(ClusterDirectory.NODE_NAME_ROLE_PREFIX)).toList()),
                "reachable", String.valueOf(!cluster.state().getUnreachable().contains(m)))));
        out.put("members", members);
        out.put("transports", rt.transports());
        out.put("pid", ProcessHandle.current().pid());
        out.put("incarnation", rt.incarnation());
        // With the pid, tells a tool on the same host (same boot id) which process this node is (client-kill drill).
        out.put("bootId", io.weft.actors.drill.ProcFs.bootId());
        out.put("dataDir", rt.settings().dataDir().toAbsolutePath().toString());
        return out;
    }

    /** A volume file under one of this node's export roots. {@code open}: a backend has it open. */
    public record VolumeFile(String path, long size, boolean open) {
    }

    /**
     * The regular files under this node's export roots (a few levels deep): what {@code volume create} made and
     * what can be mapped. Empty on a node without the storage role.
     */
    static List<VolumeFile> volumes(WeftRuntime rt) {
        if (!rt.settings().isStorage()) {
            return List.of();
        }
        List<VolumeFile> out = new java.util.ArrayList<>();
        java.nio.file.Path dataDir = io.weft.actors.NodeStateFiles.resolvedDataDir(rt.settings().dataDir());
        for (java.nio.file.Path root : rt.settings().exportRoots()) {
            if (!java.nio.file.Files.isDirectory(root)) {
                continue;
            }
            try (var files = java.nio.file.Files.walk(root, 4)) {
                files.filter(java.nio.file.Files::isRegularFile).sorted().forEach(f -> {
                    try {
                        java.nio.file.Path realPath = f.toRealPath();
                        if (io.weft.actors.NodeStateFiles.isStateFile(dataDir, realPath)) {
                            return; // the node's own state, not a volume
                        }
                        String real = realPath.toString();
                        out.add(new VolumeFile(f.toString(), java.nio.file.Files.size(f),
                                rt.state().backend(real) != null || rt.state().backend(f.toString()) != null));
                    } catch (java.io.IOException e) {
                        // Gone while listing: not a volume any more.
                    }
                });
            } catch (java.io.IOException | java.io.UncheckedIOException e) {
                // An unreadable root lists nothing; the storage node logs why when a map touches it.
            }
        }
        return out;
    }
}
