package io.weft.rdma.verbs;

import io.weft.rdma.verbs.disni.DisniProbe;

/** Runs in a fresh child JVM so DiSNI's first-use and later-use failures are both observed. */
public final class DisniProbeMain {
    private DisniProbeMain() {
    }

    public static void main(String[] args) {
        DisniProbe.Result first = DisniProbe.attempt();
        DisniProbe.Result second = DisniProbe.attempt();
        System.out.println("FIRST " + first.available() + " " + first.reason());
        System.out.println("SECOND " + second.available() + " " + second.reason());
        VerbsProviders.Choice a = VerbsProviders.open(VerbsProviders.Mode.AUTO);
        VerbsProviders.Choice b = VerbsProviders.open(VerbsProviders.Mode.AUTO);
        System.out.println("AUTO " + a.provider().name() + " " + b.provider().name());
        try {
            VerbsProviders.open(VerbsProviders.Mode.DISNI);
            System.out.println("DISNI opened");
        } catch (RdmaUnavailableException e) {
            System.out.println("DISNI refused " + e.getMessage());
        }
        System.out.flush();
    }
}
