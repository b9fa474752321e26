// A local Neo4j Community server for development and tests: the embedded database with Bolt on
// loopback and authentication on. Run in Java's source-file mode by scripts/services.sh:
//   java -cp 'LIB/*' Launcher.java HOME BOLT_PORT PASSWORD_FILE PAGECACHE_MB
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

public class Launcher {
    public static void main(String[] args) throws Exception {
        Path home = Path.of(args[0]);
        int boltPort = Integer.parseInt(args[1]);
        String password = Files.readString(Path.of(args[2])).trim();
        long pageCacheBytes = Long.parseLong(args[3]) * 1024 * 1024;

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", boltPort))
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheBytes)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }));
        setPassword(dbms, password);
        System.out.println("neo4j: bolt listening on 127.0.0.1:" + boltPort);
        System.out.flush();
        stopped.await();
    }

    // The password is set before any client can use the default one; a restart keeps it.
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException error) {
            if (!String.valueOf(error.getMessage()).contains("cannot be the same")) {
                throw error;
            }
        }
    }
}
