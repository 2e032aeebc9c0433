package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.util.Set;
import java.util.TreeSet;

/** A node's own view of the cluster, read from Pekko Management's {@code GET /cluster/members}. */
record Membership(Set<Integer> upPorts, Set<String> other, String selfUid) {

    /** Up members by cluster port; anything else (not Up, or unreachable) in {@code other}; null when silent. */
    static Membership of(NodeProcess n) {
        try {
            HttpResponse<String> r = n.get("/cluster/members");
            if (r.statusCode() != 200) {
                return null;
            }
            JsonNode body = json(r);
            String self = body.get("selfNode").asText();
            Set<Integer> up = new TreeSet<>();
            Set<String> other = new TreeSet<>();
            String selfUid = "";
            for (JsonNode m : body.get("members")) {
                String node = m.get("node").asText();
                if (node.equals(self)) {
                    selfUid = m.get("nodeUid").asText();
                }
                if ("Up".equals(m.get("status").asText())) {
                    up.add(port(node));
                } else {
                    other.add(node + " " + m.get("status").asText());
                }
            }
            for (JsonNode u : body.get("unreachable")) {
                other.add(u.get("node").asText() + " unreachable");
            }
            return new Membership(up, other, selfUid);
        } catch (Exception e) {
            return null;
        }
    }

    private static int port(String node) {
        return Integer.parseInt(node.substring(node.lastIndexOf(':') + 1));
    }

    /** Exactly these members, all Up and reachable. */
    boolean isExactly(Set<Integer> ports) {
        return other.isEmpty() && upPorts.equals(new TreeSet<>(ports));
    }

    @Override
    public String toString() {
        return "up " + upPorts + (other.isEmpty() ? "" : " other " + other) + " (self uid " + selfUid + ")";
    }
}
