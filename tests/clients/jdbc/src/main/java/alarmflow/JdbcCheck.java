package alarmflow;

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

/** Prints what the driver reads, one fact a line, for the Python test to compare with the database. */
public final class JdbcCheck {
    private JdbcCheck() {}

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(url, props)) {
            System.out.println("product\t" + conn.getMetaData().getDatabaseProductName());
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count() AS n, toString(sum(number)) AS s FROM numbers(1000)")) {
                rs.next();
                System.out.println("query\t" + rs.getLong("n") + "\t" + rs.getString("s"));
            }
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count() FROM events")) {
                rs.next();
                System.out.println("count\t" + rs.getLong(1));
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count() FROM events WHERE type = ?")) {
                ps.setString(1, args[3]);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("prepared\t" + args[3] + "\t" + rs.getLong(1));
                }
            }
            DatabaseMetaData meta = conn.getMetaData();
            try (ResultSet rs = meta.getTables(null, "default", "%", null)) {
                while (rs.next()) {
                    System.out.println("table\t" + rs.getString("TABLE_SCHEM") + "\t" + rs.getString("TABLE_CAT")
                            + "\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet rs = meta.getColumns(null, "default", "events", "%")) {
                while (rs.next()) {
                    System.out.println("column\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("COLUMN_NAME")
                            + "\t" + rs.getString("TYPE_NAME"));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.executeQuery("INSERT INTO events (event_id) VALUES ('x')");
                System.out.println("write\taccepted");
            } catch (java.sql.SQLException e) {
                System.out.println("write\trefused\t" + e.getMessage().replace('\n', ' '));
            }
        }
    }
}
