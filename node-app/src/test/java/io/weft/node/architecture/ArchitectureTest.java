package io.weft.node.architecture;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.domain.JavaMethodCall;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.EvaluationResult;
import io.weft.actors.NodeState;
import io.weft.actors.publishfixture.StrayPublisher;
import io.weft.core.layeringfixture.CoreClassReachingIntoPekko;
import io.weft.cxl.cyclefixture.left.LeftOfCycle;
import io.weft.cxl.cyclefixture.right.RightOfCycle;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The module layering, written as rules over the main classes of every module (node-app's test classpath holds them
 * all): fabric-core is the bottom layer and knows no Pekko and no module above it; the two transports ({@code cxl},
 * {@code rdma}) see only fabric-core and libraries, not each other; the actors never reach into the node
 * application; inside each module no two packages depend on each other in a cycle; and the state that management
 * reads ({@link NodeState}'s snapshots) is published only by the actors that own it (docs/control-plane.md).
 *
 * <p>Three tests show the rules can fail: they evaluate a rule against fixture classes (in this module's test
 * sources, so never part of the imported main classes) that cross a layer or close a cycle, and assert the
 * violation is reported.
 */
class ArchitectureTest {
    private static final String[] PEKKO = {"org.apache.pekko.."};

    /** Module roots whose packages must be free of cycles among themselves. */
    private static final String[] MODULE_ROOTS = {"io.weft.core", "io.weft.cxl", "io.weft.rdma", "io.weft.actors",
        "io.weft.node"};

    /** Main classes only: surefire/failsafe output directories and test jars (fabric-core's test-jar) stay out. */
    private static final ImportOption MAIN_CLASSES_ONLY = new ImportOption() {
        private final Pattern testLocation = Pattern.compile(".*(/test-classes/|-tests\\.jar).*");

        @Override
        public boolean includes(Location location) {
            return !location.matches(testLocation);
        }
    };

    static final ArchRule CORE_KNOWS_NO_PEKKO_AND_NO_LAYER_ABOVE = noClasses()
        .that().resideInAPackage("io.weft.core..")
        .should().dependOnClassesThat().resideInAnyPackage(PEKKO)
        .orShould().dependOnClassesThat().resideInAnyPackage(
            "io.weft.actors..", "io.weft.rdma..", "io.weft.cxl..", "io.weft.node..", "io.weft.testkit..")
        .because("fabric-core is the bottom layer: the data plane without the control plane (docs/architecture.md)");

    static final ArchRule RDMA_SEES_ONLY_FABRIC_CORE = transportSeesOnlyFabricCore("io.weft.rdma..");

    static final ArchRule CXL_SEES_ONLY_FABRIC_CORE = transportSeesOnlyFabricCore("io.weft.cxl..");

    static final ArchRule ACTORS_DO_NOT_REACH_INTO_THE_NODE_APP = noClasses()
        .that().resideInAPackage("io.weft.actors..")
        .should().dependOnClassesThat().resideInAnyPackage("io.weft.node..", "io.weft.testkit..")
        .because("node-app wires the actors, not the other way round");

    static final ArchRule NOTHING_USES_THE_RECEPTIONIST = noClasses()
        .that().resideInAPackage("io.weft..")
        .should().dependOnClassesThat().resideInAPackage("org.apache.pekko.actor.typed.receptionist..")
        .orShould().callMethodWhere(DescribedPredicate.describe("ActorSystem.receptionist()",
            call -> call.getName().equals("receptionist")
                && call.getTargetOwner().isAssignableTo(org.apache.pekko.actor.typed.ActorSystem.class)))
        .because("the Receptionist's replicator ticks on every idle node; services are found from membership at "
            + "well-known paths (io.weft.actors.cluster.ClusterDirectory, issue 12)");

    /** The owners of {@link NodeState}'s snapshots: the device and session actors, the registry, backend actors. */
    private static final Set<String> SNAPSHOT_OWNERS = Set.of("io.weft.actors.client.DeviceActor",
        "io.weft.actors.client.DeviceLifecycle", "io.weft.actors.client.MirroredDeviceActor",
        "io.weft.actors.client.MirrorLegs", "io.weft.actors.client.SessionActor",
        "io.weft.actors.client.DeviceRegistry", "io.weft.actors.storage.BackendActor");

    static final ArchRule ONLY_OWNERS_PUBLISH_NODE_STATE = noClasses()
        .should().callMethodWhere(DescribedPredicate.describe(
            "a publication of NodeState by a class that does not own it", ArchitectureTest::strayPublication))
        .because("each snapshot has one writer, the actor that decides it (docs/control-plane.md)");

    private static JavaClasses mainClasses;

    /**
     * A snapshot's {@code update} called outside its owners, or a lease renewal recorded outside the lease renewer
     * (an owner's nested classes and lambdas count as the owner).
     */
    private static boolean strayPublication(JavaMethodCall call) {
        String origin = call.getOriginOwner().getName();
        int nested = origin.indexOf('$');
        String outer = nested < 0 ? origin : origin.substring(0, nested);
        if (call.getName().equals("update") && call.getTargetOwner().isAssignableTo(NodeState.Published.class)) {
            return !SNAPSHOT_OWNERS.contains(outer);
        }
        return call.getName().equals("leaseRenewed")
            && call.getTargetOwner().isAssignableTo(NodeState.SessionView.class)
            && !outer.equals("io.weft.actors.client.LeaseRenewer");
    }

    @BeforeAll
    static void importMainClasses() {
        mainClasses = new ClassFileImporter().withImportOption(MAIN_CLASSES_ONLY).importPackages("io.weft");
        // A rule over an empty import passes vacuously: make sure every module was on the classpath.
        for (String root : MODULE_ROOTS) {
            assertTrue(mainClasses.stream().anyMatch(c -> c.getPackageName().startsWith(root)),
                "no main class imported under " + root);
        }
    }

    private static ArchRule transportSeesOnlyFabricCore(String transportPackages) {
        return noClasses()
            .that().resideInAPackage(transportPackages)
            .should().dependOnClassesThat(resideInAPackage("io.weft..")
                .and(not(resideInAnyPackage("io.weft.core..", transportPackages))))
            .orShould().dependOnClassesThat().resideInAnyPackage(PEKKO)
            .because("a transport is a library over fabric-core: the actors choose and wire it");
    }

    /**
     * Each package directly below {@code moduleRoot}, with its subpackages, is one slice: {@code io.weft.rdma.verbs}
     * and {@code io.weft.rdma.verbs.disni} are one slice (the verbs API chooses its DiSNI implementation), and the
     * classes directly in the root package (the module's entry points, e.g. {@code WeftRuntime}) belong to none.
     */
    static ArchRule packagesFreeOfCycles(String moduleRoot) {
        return slices().matching(moduleRoot + ".(*)..").should().beFreeOfCycles();
    }

    @Test
    void fabricCoreImportsNoPekkoAndNoLayerAboveIt() {
        CORE_KNOWS_NO_PEKKO_AND_NO_LAYER_ABOVE.check(mainClasses);
    }

    @Test
    void rdmaImportsOnlyFabricCore() {
        RDMA_SEES_ONLY_FABRIC_CORE.check(mainClasses);
    }

    @Test
    void cxlImportsOnlyFabricCore() {
        CXL_SEES_ONLY_FABRIC_CORE.check(mainClasses);
    }

    @Test
    void nothingUsesTheReceptionist() {
        NOTHING_USES_THE_RECEPTIONIST.check(mainClasses);
    }

    @Test
    void actorsDoNotImportTheNodeApp() {
        ACTORS_DO_NOT_REACH_INTO_THE_NODE_APP.check(mainClasses);
    }

    @Test
    void fabricCorePackagesAreFreeOfCycles() {
        packagesFreeOfCycles("io.weft.core").check(mainClasses);
    }

    @Test
    void cxlPackagesAreFreeOfCycles() {
        packagesFreeOfCycles("io.weft.cxl").check(mainClasses);
    }

    @Test
    void rdmaPackagesAreFreeOfCycles() {
        packagesFreeOfCycles("io.weft.rdma").check(mainClasses);
    }

    /**
     * {@code client} <-> {@code storage} and {@code drill} <-> {@code storage} were cycles until the cross-node
     * messages moved to {@code io.weft.actors.protocol} (issue #16, item 1); the rule was frozen on them meanwhile and
     * holds strictly now.
     */
    @Test
    void actorsPackagesAreFreeOfCycles() {
        packagesFreeOfCycles("io.weft.actors").check(mainClasses);
    }

    @Test
    void nodeAppPackagesAreFreeOfCycles() {
        packagesFreeOfCycles("io.weft.node").check(mainClasses);
    }

    @Test
    void onlyTheOwningActorsPublishNodeState() {
        ONLY_OWNERS_PUBLISH_NODE_STATE.check(mainClasses);
    }

    @Test
    void aClassPublishingADevicesStateItDoesNotOwnBreaksTheOwnershipRule() {
        JavaClasses fixture = new ClassFileImporter().importClasses(StrayPublisher.class);

        EvaluationResult result = ONLY_OWNERS_PUBLISH_NODE_STATE.evaluate(fixture);

        assertTrue(result.hasViolation(), "the rule let a class that owns no state publish a device's snapshot");
        String report = result.getFailureReport().toString();
        assertTrue(report.contains(StrayPublisher.class.getName()), report);
        assertTrue(report.contains("update"), report);
    }

    @Test
    void aFabricCoreClassUsingPekkoBreaksTheCoreRule() {
        JavaClasses fixture = new ClassFileImporter().importClasses(CoreClassReachingIntoPekko.class);

        EvaluationResult result = CORE_KNOWS_NO_PEKKO_AND_NO_LAYER_ABOVE.evaluate(fixture);

        assertTrue(result.hasViolation(), "the rule let a fabric-core class use Pekko");
        String report = result.getFailureReport().toString();
        assertTrue(report.contains(CoreClassReachingIntoPekko.class.getName()), report);
        assertTrue(report.contains("org.apache.pekko.actor.typed.ActorRef"), report);
    }

    @Test
    void twoPackagesUsingEachOtherBreakTheCycleRule() {
        JavaClasses fixture = new ClassFileImporter().importClasses(LeftOfCycle.class, RightOfCycle.class);

        EvaluationResult result = packagesFreeOfCycles("io.weft.cxl.cyclefixture").evaluate(fixture);

        assertTrue(result.hasViolation(), "the rule missed a cycle between two packages");
        String report = result.getFailureReport().toString();
        assertTrue(report.contains("io.weft.cxl.cyclefixture.left"), report);
        assertTrue(report.contains("io.weft.cxl.cyclefixture.right"), report);
        // The same rule passes on one side of the cycle alone: it reacts to the cycle, not to the fixture.
        assertFalse(packagesFreeOfCycles("io.weft.cxl.cyclefixture")
            .evaluate(new ClassFileImporter().importClasses(LeftOfCycle.class)).hasViolation());
    }
}
