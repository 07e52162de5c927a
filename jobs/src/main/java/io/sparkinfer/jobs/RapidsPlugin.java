package io.sparkinfer.jobs;

import org.apache.spark.SparkConf;

/**
 * Whether the RAPIDS Accelerator's Spark plugin is configured ({@code spark.plugins}): it then plans the job's queries
 * for the GPU, so the job plans them in shapes RAPIDS runs there (README, "RAPIDS").
 */
final class RapidsPlugin {

  /** RAPIDS' Spark plugin class. */
  static final String CLASS = "com.nvidia.spark.SQLPlugin";

  private RapidsPlugin() {}

  /** Whether {@code conf}'s {@code spark.plugins} names RAPIDS' plugin. */
  static boolean configured(SparkConf conf) {
    return conf.get("spark.plugins", "").contains(CLASS);
  }
}
