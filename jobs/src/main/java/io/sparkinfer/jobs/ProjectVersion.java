package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** This project's version, from the build ({@code version.properties}): the tables record it with every row. */
public final class ProjectVersion {

  private ProjectVersion() {}

  /** The version, or {@code unknown} when the build did not write it. */
  public static String get() {
    try (InputStream in = ProjectVersion.class.getResourceAsStream("version.properties")) {
      Properties p = new Properties();
      if (in != null) {
        p.load(in);
      }
      return p.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }
}
