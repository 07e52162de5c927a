package io.sparkinfer.jobs;

import io.sparkinfer.layout.Layout;
import java.util.Locale;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stage-level scheduling of the inference stage ({@code --inference-gpus}): the stage that runs
 * {@link PartitionInference} asks for whole GPUs per task through a task resource profile
 * ({@link ResourceProfileBuilder}, {@code TaskResourceRequests.resource("gpu", n)}), while every other stage
 * (reading, token counts, dedup, the sort by length) keeps the application's task resources, where
 * {@code spark.task.resource.gpu.amount} is a fraction (e.g. 0.25): four CPU tasks share each GPU slot, so
 * planning runs as many tasks as the executors have cores and inference one task per GPU.
 *
 * <p>Spark applies such a profile with dynamic allocation off on standalone, YARN and Kubernetes (a
 * {@code TaskResourceProfile}: the executors stay those of the default profile, with their GPUs); local mode has no
 * stage-level scheduling. The profile goes on the RDD of the requests (the stage after the range shuffle); the
 * requests are then a DataFrame again, so inference and the write run in that stage, under the profile. Planning
 * error rows written in the same commit are part of that stage too.
 */
final class InferenceStageProfile {

  private static final Logger LOG = LoggerFactory.getLogger(InferenceStageProfile.class);

  static final String EXECUTOR_GPUS = "spark.executor.resource.gpu.amount";
  static final String TASK_GPUS = "spark.task.resource.gpu.amount";
  static final String TASK_CPUS = "spark.task.cpus";

  /** No profile: every stage runs with the application's task resources. */
  static final InferenceStageProfile NONE = new InferenceStageProfile(0, null);

  private final int gpus;
  private final ResourceProfile profile;

  private InferenceStageProfile(int gpus, ResourceProfile profile) {
    this.gpus = gpus;
    this.profile = profile;
  }

  /**
   * The profile for a run: {@code requested} GPUs per inference task ({@link JobOptions#INFERENCE_GPUS}: 0 none,
   * {@link JobOptions#AUTO_GPUS} auto), checked against the session's conf.
   *
   * @throws IllegalArgumentException when GPUs are requested where Spark cannot give them to the stage
   */
  static InferenceStageProfile forRun(SparkSession spark, int requested, Layout layout) {
    SparkConf conf = spark.sparkContext().getConf();
    int gpus = taskGpus(requested, conf, spark.sparkContext().isLocal(), layout);
    if (gpus == 0) {
      return NONE;
    }
    TaskResourceRequests tasks = new TaskResourceRequests().cpus(conf.getInt(TASK_CPUS, 1))
        .resource(DeviceBinding.GPU_RESOURCE, gpus);
    InferenceStageProfile stage = new InferenceStageProfile(gpus, new ResourceProfileBuilder().require(tasks).build());
    LOG.info("{}; other stages take {}={}", stage, TASK_GPUS, conf.get(TASK_GPUS, "0"));
    return stage;
  }

  /**
   * GPUs per inference task: {@code requested} when given (checked), else (auto) the layout's GPUs when the
   * executors have GPUs and the application's tasks take a fraction of one, else 0.
   */
  static int taskGpus(int requested, SparkConf conf, boolean local, Layout layout) {
    double executorGpus = conf.getDouble(EXECUTOR_GPUS, 0);
    double taskGpus = conf.getDouble(TASK_GPUS, 0);
    if (requested == 0) {
      return 0;
    }
    if (requested > 0) {
      if (local) {
        throw new IllegalArgumentException("--inference-gpus " + requested + " needs a cluster (standalone, YARN or "
            + "Kubernetes): Spark's local mode has no stage-level scheduling; use --inference-gpus 0");
      }
      if (executorGpus < requested) {
        throw new IllegalArgumentException("--inference-gpus " + requested + " asks for more GPUs per task than each "
            + "executor has (" + EXECUTOR_GPUS + "=" + format(executorGpus) + "); set " + EXECUTOR_GPUS
            + ", " + TASK_GPUS + " and the discovery script as in conf/gpu-cluster.properties");
      }
      return requested;
    }
    if (local || executorGpus <= 0 || taskGpus >= 1) {
      return 0; // no stage-level scheduling, no GPUs, or every task holds whole GPUs already
    }
    int devices = layout.auto() ? 1 : layout.replicas() * layout.devicesPerReplica();
    return (int) Math.min(devices, Math.floor(executorGpus));
  }

  /** GPUs each inference task asks for; 0 when there is no profile. */
  int gpus() {
    return gpus;
  }

  /** Whether the inference stage has a profile of its own (its tasks hold GPUs the other stages' tasks do not). */
  boolean isSet() {
    return profile != null;
  }

  /** The requests under the profile (the same dataset when there is none). */
  Dataset<Row> apply(SparkSession spark, Dataset<Row> requests) {
    if (profile == null) {
      return requests;
    }
    JavaRDD<Row> rdd = requests.toJavaRDD().withResources(profile);
    return spark.createDataFrame(rdd, requests.schema());
  }

  @Override
  public String toString() {
    return profile == null ? "no inference stage profile"
        : String.format(Locale.ROOT, "inference stage profile %d: %d GPU(s) per task", profile.id(), gpus);
  }

  private static String format(double v) {
    return v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v);
  }
}
