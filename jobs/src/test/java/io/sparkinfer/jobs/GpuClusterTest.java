package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.layout.Layout;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.TaskResourceRequest;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.CollectionAccumulator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stage-level scheduling of the inference stage ({@code --inference-gpus}, {@link InferenceStageProfile}) on the
 * standalone cluster of {@code submit/local-cluster.sh}, with one worker that offers one fake GPU: the worker finds
 * it with {@code submit/lib/gpu-discovery.sh} and a fake {@code nvidia-smi} that lists GPU 0. The application asks,
 * as {@code conf/gpu-cluster.properties} does, for one GPU per executor and half a GPU per task (two CPU tasks per
 * GPU slot on its two cores); the inference stage's profile asks for a whole GPU. The engine runs on the CPU
 * ({@code --device cpu}): the GPU is only scheduled, never used.
 */
@Tag("slow")
class GpuClusterTest {

  @TempDir
  static Path tmp;

  static Map<String, String> env;
  static String masterUrl;
  SparkSession spark;
  Timeline timeline;

  @BeforeAll
  static void startCluster() {
    Path fake = GpuDiscoveryScriptTest.fakeNvidiaSmi(tmp.resolve("fake-nvidia-smi"), "0\n", 0);
    env = Map.of("SPARKINFER_CLUSTER_DIR", tmp.resolve("cluster").toString(),
        "SPARKINFER_MASTER_PORT", Integer.toString(Shell.freePort()),
        "SPARKINFER_WORKERS", "1",
        "SPARKINFER_WORKER_CORES", "2",
        "SPARKINFER_WORKER_GPUS", "1",
        "SPARKINFER_WORKER_MEMORY", "1g",
        "PATH", fake + ":" + System.getenv("PATH"));
    Shell.Result r = Shell.run(env, 180, List.of("submit/local-cluster.sh", "start"));
    assertThat(r.status()).as("local-cluster.sh start: %s", r).isZero();
    assertThat(r.stderr()).contains("1 GPU(s)");
    masterUrl = r.stdout().strip();
  }

  @AfterAll
  static void stopCluster() {
    if (env != null) {
      Shell.Result r = Shell.run(env, 60, List.of("submit/local-cluster.sh", "stop"));
      assertThat(r.status()).as("local-cluster.sh stop: %s", r).isZero();
    }
  }

  @BeforeEach
  void startApplication() throws IOException {
    TestSupport.stopSpark();
    Path target = TestSupport.repo().resolve("jobs/target");
    String classpath = target.resolve("classes") + ":" + target.resolve("test-classes") + ":"
        + Files.readString(target.resolve("classpath/app.classpath")).strip();
    spark = SparkSession.builder()
        .master(masterUrl)
        .appName("sparkinfer-gpu-cluster-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "1g")
        .config("spark.executor.cores", "2")
        .config(InferenceStageProfile.EXECUTOR_GPUS, "1")
        .config(InferenceStageProfile.TASK_GPUS, "0.5")
        .config("spark.locality.wait", "0")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.executor.extraClassPath", classpath)
        .config("spark.executor.extraJavaOptions",
            "-Dai.djl.offline=true -Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1")
        .getOrCreate();
    timeline = new Timeline();
    spark.sparkContext().addSparkListener(timeline);
    waitForExecutor(spark);
  }

  @AfterEach
  void stopApplication() {
    if (spark != null) {
      spark.stop();
    }
    TestSupport.stopSpark();
  }

  @Test
  void inferenceTasksTakeWholeGpusWhilePlanningTasksShareThem() throws Exception {
    Map<String, String> rows = new HashMap<>(TestSupport.referenceInput());
    rows.put("empty", "");
    Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows);
    String out = tmp.resolve("out").toString();
    JobOptions o = TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input", input.toString(),
        "--output", out, "--max-new-tokens", "" + BatchInferenceJobLocalTest.MAX_NEW, "--partitions", "4",
        "--device", "cpu");
    assertThat(o.inferenceGpus()).as("the default").isEqualTo(JobOptions.AUTO_GPUS);
    JobResult result = BatchInference.run(spark, o);
    assertThat(result.succeeded()).isTrue();
    spark.sparkContext().listenerBus().waitUntilEmpty();

    Map<Integer, Integer> profileOfStage = timeline.profileOfStage;
    List<Integer> inferenceStages = timeline.stagesOfJobs("generate and write");
    List<Integer> planningStages = timeline.stagesOfJobs("plan (token counts)");
    assertThat(planningStages).as("planning ran").isNotEmpty();
    for (int stage : planningStages) {
        assertThat(profileOfStage.get(stage)).as("planning stage %d: the application's profile", stage)
            .isEqualTo(ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID());
    }
    List<Integer> gpuStages = profileOfStage.entrySet().stream()
        .filter(e -> e.getValue() != ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID()).map(Map.Entry::getKey).sorted()
        .toList();
    assertThat(gpuStages).as("the stages under another profile are the write job's inference stage")
        .hasSize(1).isSubsetOf(inferenceStages);
    int gpuProfile = profileOfStage.get(gpuStages.get(0));
    assertThat(taskGpus(gpuProfile)).as("the inference stage's tasks ask for a whole GPU").isEqualTo(1.0);
    assertThat(taskGpus(ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID()))
        .as("every other task takes half a GPU slot").isEqualTo(0.5);
    assertThat(timeline.tasksOf(gpuStages.get(0)))
        .as("the stage ran the 4 inference partitions and the one of planning error rows (the empty prompt)")
        .hasSize(5);

    Map<String, Completion> expected = BatchInferenceJobLocalTest.engineCompletions(TestSupport.referenceInput(),
        SamplingParams.GREEDY, 0);
    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).containsExactlyInAnyOrderElementsOf(rows.keySet());
    for (Row r : written) {
      String id = r.getAs("id");
      if (!id.equals("empty")) {
        assertThat(r.<String>getAs("completion")).as("completion of %s", id).isEqualTo(expected.get(id).text());
      }
    }
  }

  @Test
  void theProfiledStageSeesOneGpuAddressPerTask() {
    InferenceStageProfile stage = InferenceStageProfile.forRun(spark, 1, Layout.SINGLE);
    assertThat(stage.gpus()).isEqualTo(1);
    CollectionAccumulator<String> seen = spark.sparkContext().collectionAccumulator("gpus");
    Dataset<Row> data = spark.range(0, 64, 1, 4).toDF("n")
        .mapPartitions(new RecordGpus("cpu-stage", seen), Encoders.row(spark.range(1).toDF("n").schema()))
        .repartition(4);
    long n = stage.apply(spark, data).mapPartitions(new RecordGpus("gpu-stage", seen),
        Encoders.row(data.schema())).count();
    assertThat(n).isEqualTo(64);

    List<String> gpuStage = seen.value().stream().filter(s -> s.startsWith("gpu-stage")).sorted().toList();
    List<String> cpuStage = seen.value().stream().filter(s -> s.startsWith("cpu-stage")).sorted().toList();
    assertThat(gpuStage).as("each task of the profiled stage holds the one GPU, address 0")
        .containsExactly("gpu-stage [0]", "gpu-stage [0]", "gpu-stage [0]", "gpu-stage [0]");
    assertThat(cpuStage).as("the other stage's tasks hold a share of it (Spark gives a fraction an address too)")
        .hasSize(4).allMatch(s -> s.equals("cpu-stage [0]"));
  }

  @Test
  void autoAsksForNothingWhereEveryTaskHoldsWholeGpusOrInLocalMode() {
    org.apache.spark.SparkConf conf = new org.apache.spark.SparkConf(false)
        .set(InferenceStageProfile.EXECUTOR_GPUS, "2").set(InferenceStageProfile.TASK_GPUS, "1");
    assertThat(InferenceStageProfile.taskGpus(JobOptions.AUTO_GPUS, conf, false, Layout.SINGLE)).isZero();
    conf.set(InferenceStageProfile.TASK_GPUS, "0.25");
    assertThat(InferenceStageProfile.taskGpus(JobOptions.AUTO_GPUS, conf, false, Layout.SINGLE)).isEqualTo(1);
    assertThat(InferenceStageProfile.taskGpus(JobOptions.AUTO_GPUS, conf, false, Layout.parse("tp=2")))
        .as("a layout's GPUs").isEqualTo(2);
    assertThat(InferenceStageProfile.taskGpus(JobOptions.AUTO_GPUS, conf, true, Layout.SINGLE)).as("local mode")
        .isZero();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> InferenceStageProfile.taskGpus(4, conf, false,
        Layout.SINGLE)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("--inference-gpus 4 asks for more GPUs per task than each executor has");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> InferenceStageProfile.taskGpus(1, conf, true,
        Layout.SINGLE)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("local mode has no stage-level scheduling");
  }

  /** GPUs a task of resource profile {@code id} asks for, as the driver's profile manager holds it. */
  private double taskGpus(int id) {
    TaskResourceRequest r = spark.sparkContext().resourceProfileManager().resourceProfileFromId(id)
        .taskResourcesJMap().get("gpu");
    return r == null ? 0 : r.amount();
  }

  /** Records, for each task, a label and the GPU addresses Spark assigned to it. */
  static final class RecordGpus implements MapPartitionsFunction<Row, Row> {
    private final String label;
    private final CollectionAccumulator<String> seen;

    RecordGpus(String label, CollectionAccumulator<String> seen) {
      this.label = label;
      this.seen = seen;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
      ResourceInformation gpu = TaskContext.get().resourcesJMap().get("gpu");
      seen.add(label + " " + (gpu == null ? "[]" : List.of(gpu.addresses())));
      List<Row> out = new ArrayList<>();
      rows.forEachRemaining(out::add);
      return out.iterator();
    }
  }

  /** What the scheduler did: each stage's profile and job, each task's stage and executor. */
  static final class Timeline extends SparkListener {
    final Map<Integer, Integer> profileOfStage = new ConcurrentHashMap<>();
    final Map<Integer, String> jobOfStage = new ConcurrentHashMap<>();
    final List<long[]> tasks = Collections.synchronizedList(new ArrayList<>()); // stage, executor

    @Override
    public void onJobStart(SparkListenerJobStart event) {
      String description = event.properties() == null ? null : event.properties().getProperty("spark.job.description");
      for (Object id : scala.jdk.javaapi.CollectionConverters.asJava(event.stageIds())) {
        jobOfStage.put((Integer) id, String.valueOf(description));
      }
    }

    @Override
    public void onStageSubmitted(SparkListenerStageSubmitted event) {
      profileOfStage.put(event.stageInfo().stageId(), event.stageInfo().resourceProfileId());
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd event) {
      tasks.add(new long[] {event.stageId(), Long.parseLong(event.taskInfo().executorId())});
    }

    /** The submitted stages of the jobs whose description contains {@code text}. */
    List<Integer> stagesOfJobs(String text) {
      return jobOfStage.entrySet().stream().filter(e -> e.getValue().contains(text))
          .map(Map.Entry::getKey).filter(profileOfStage::containsKey).sorted().collect(Collectors.toList());
    }

    List<long[]> tasksOf(int stage) {
      synchronized (tasks) {
        return tasks.stream().filter(t -> t[0] == stage).toList();
      }
    }
  }

  private static void waitForExecutor(SparkSession spark) {
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (spark.sparkContext().statusTracker().getExecutorInfos().length < 2) { // the executor and the driver
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the executor did not register within 120 s");
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }
}
