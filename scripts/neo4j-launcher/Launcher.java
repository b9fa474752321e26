// A local Neo4j Community server for development and tests: the embedded database management
// service with Bolt on loopback, no HTTP, and authentication on. scripts/services.sh runs it in
// Java's source-file mode, so nothing is compiled beforehand:
//   java -cp 'LIB/*' Launcher.java HOME BOLT_PORT PASSWORD_FILE PAGECACHE_MB
// HOME holds the databases (HOME/data) and Neo4j's debug log (HOME/logs/debug.log); the user log
// goes to stdout, which services.sh sends to .run/neo4j/neo4j.log. The password is read from
// PASSWORD_FILE so it never appears on a command line or in a log. SIGTERM shuts down cleanly.
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Result;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

public class Launcher {
    // The service running now (the setup one, then the one with Bolt), for the shutdown hook.
    private static final AtomicReference<DatabaseManagementService> running =
            new AtomicReference<>();

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: Launcher HOME BOLT_PORT PASSWORD_FILE PAGECACHE_MB");
            System.exit(2);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            DatabaseManagementService dbms = running.getAndSet(null);
            if (dbms != null) {
                System.out.println("launcher: shutting down");
                dbms.shutdown();
                System.out.println("launcher: stopped");
                System.out.flush();
            }
            stopped.countDown();
        }, "launcher-shutdown"));
        try {
            start(Path.of(args[0]).toAbsolutePath(), Integer.parseInt(args[1]), Path.of(args[2]),
                    Long.parseLong(args[3]) * 1024 * 1024);
        } catch (Throwable error) {
            // Neo4j's own threads would keep the JVM alive: exit, and the hook shuts it down.
            System.out.println("launcher: failed to start");
            error.printStackTrace(System.out);
            System.out.flush();
            System.exit(1);
        }
        try {
            stopped.await();
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static void start(Path home, int boltPort, Path passwordFile, long pageCacheBytes)
            throws Exception {
        String password = Files.readString(passwordFile).trim();
        if (password.length() < 8) {
            throw new IllegalArgumentException("the password file must hold at least 8 characters");
        }
        // On the first start Bolt stays closed until the password is set: a short run without
        // Bolt creates the databases and sets it. So whenever Bolt answers, the password holds,
        // and services.sh takes a Bolt answer for readiness.
        if (!Files.isDirectory(home.resolve("data/databases/system"))) {
            DatabaseManagementService setup = build(home, pageCacheBytes, boltPort, false);
            running.set(setup);
            setPassword(setup, password);
            if (running.compareAndSet(setup, null)) {
                setup.shutdown();
            } else {
                return; // SIGTERM came in the meantime; the hook has shut it down.
            }
        }
        DatabaseManagementService dbms = build(home, pageCacheBytes, boltPort, true);
        running.set(dbms);
        setPassword(dbms, password); // a no-op unless the password file was replaced
        GraphDatabaseService neo4j = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        String version = neo4j.executeTransactionally(
                "CALL dbms.components() YIELD name, versions, edition "
                        + "RETURN name + ' ' + versions[0] + ' ' + edition AS version",
                Map.of(), (Result result) -> (String) result.next().get("version"));
        neo4j.executeTransactionally("RETURN 1");
        System.out.println("launcher: ready, " + version + ", bolt on 127.0.0.1:" + boltPort);
        System.out.flush();
    }

    private static DatabaseManagementService build(
            Path home, long pageCacheBytes, int boltPort, boolean bolt) {
        return new DatabaseManagementServiceBuilder(home)
                .setUserLogProvider(new Log4jLogProvider(System.out, Level.INFO))
                .setConfig(BoltConnector.enabled, bolt)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", boltPort))
                .setConfig(BoltConnector.advertised_address,
                        new SocketAddress("127.0.0.1", boltPort))
                .setConfig(HttpConnector.enabled, false)
                // Netty's graceful shutdown otherwise idles 2 x 5 s before the process can exit.
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout,
                        Duration.ofSeconds(5))
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheBytes)
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                // A scratch database for tests: keep little transaction log on disk.
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "2 files")
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .build();
    }

    // Sets the neo4j user's password. On a restart the stored password is usually the same one
    // already, which Neo4j refuses to "change"; that case is fine.
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
            System.out.println("launcher: password of user neo4j set");
        } catch (RuntimeException error) {
            if (!String.valueOf(error.getMessage()).contains("cannot be the same")) {
                throw error;
            }
            System.out.println("launcher: password of user neo4j unchanged");
        }
    }
}
