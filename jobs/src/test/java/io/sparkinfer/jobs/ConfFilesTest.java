package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.layout.Layout;
import io.sparkinfer.options.OptionTable;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.apache.spark.SparkConf;
import org.apache.spark.internal.config.ConfigEntry;
import org.apache.spark.internal.config.ConfigEntry$;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfile$;
import org.apache.spark.resource.ResourceUtils;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * The properties files in {@code conf/}, loaded from the repository itself (not copies), read as spark-submit reads
 * a {@code --properties-file}: every key is one Spark, Hadoop, RAPIDS or sparkinfer knows (so a typo fails here,
 * not silently on a cluster), every value parses as its key's type, and the numbers agree with each other (GPU
 * slots, the inference stage's profile, paths that must exist, versions that must match the build's).
 *
 * <p>Known keys: Spark's registered config entries (core, SQL, and the YARN and Kubernetes modules, whose config
 * objects are loaded here), resource keys ({@code spark.{executor,task,driver,worker}.resource.NAME.*}) parsed by
 * Spark's {@link ResourceUtils}, {@code spark.executorEnv.*} and similar environment prefixes, {@code spark.hadoop.*}
 * checked against Hadoop's {@code *-default.xml} and S3A's key constants, and {@code spark.sparkinfer.*} resolved
 * through the job's option table. {@code spark.rapids.*} keys are checked against RAPIDS' own config list by
 * {@link RapidsExplainOnlyTest}, which needs the RAPIDS jar.
 */
class ConfFilesTest {

  static final List<String> FILES = List.of("gpu-cluster.properties", "yarn-gpu.properties", "k8s-gpu.properties",
      "local.properties", "s3.properties");

  /** Spark keys read by name rather than through a config entry. */
  static final Set<String> READ_BY_NAME = Set.of("spark.app.name", "spark.master");

  /** Prefixes whose suffix is a name of the user's choosing (environment variables). */
  static final List<String> ENV_PREFIXES = List.of("spark.executorEnv.", "spark.yarn.appMasterEnv.",
      "spark.kubernetes.driverEnv.");

  static final Pattern RESOURCE_KEY =
      Pattern.compile("spark\\.(executor|driver|task|worker)\\.resource\\.([a-z]+)\\.(amount|discoveryScript|vendor)");

  static Set<String> hadoopKeys;

  @BeforeAll
  static void loadRegistries() throws Exception {
    // Spark registers a config entry when the object that declares it is loaded.
    for (String holder : List.of("org.apache.spark.internal.config.package$", "org.apache.spark.internal.config.UI$",
        "org.apache.spark.internal.config.Deploy$", "org.apache.spark.internal.config.Worker$",
        "org.apache.spark.internal.config.Network$", "org.apache.spark.internal.config.Status$",
        "org.apache.spark.sql.internal.SQLConf$", "org.apache.spark.sql.internal.StaticSQLConf$",
        "org.apache.spark.deploy.k8s.Config$", "org.apache.spark.deploy.yarn.config.package$")) {
      Class.forName(holder, true, ConfFilesTest.class.getClassLoader());
    }
    hadoopKeys = new HashSet<>();
    for (String defaults : List.of("core-default.xml", "hdfs-default.xml", "mapred-default.xml", "yarn-default.xml")) {
      for (URL url : Collections.list(ConfFilesTest.class.getClassLoader().getResources(defaults))) {
        try (InputStream in = url.openStream()) {
          NodeList names = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(in)
              .getElementsByTagName("name");
          for (int i = 0; i < names.getLength(); i++) {
            hadoopKeys.add(((Element) names.item(i)).getTextContent().strip());
          }
        }
      }
    }
    for (String constants : List.of("org.apache.hadoop.fs.s3a.Constants",
        "org.apache.hadoop.fs.s3a.commit.CommitConstants")) {
      for (Field f : Class.forName(constants).getFields()) {
        if (Modifier.isStatic(f.getModifiers()) && f.getType() == String.class) {
          hadoopKeys.add((String) f.get(null));
        }
      }
    }
    assertThat(hadoopKeys).as("Hadoop's key lists were found").contains("fs.defaultFS", "fs.s3a.committer.name",
        "hadoop.security.credential.provider.path");
  }

  @Test
  void everyKeyIsOneSparkHadoopOrTheJobKnowsAndEveryValueParses() {
    Map<String, List<String>> unknown = new TreeMap<>();
    for (String file : FILES) {
      Map<String, String> conf = load(file);
      List<String> bad = new ArrayList<>();
      for (Map.Entry<String, String> e : conf.entrySet()) {
        String problem = check(e.getKey(), e.getValue());
        if (problem != null) {
          bad.add(e.getKey() + "=" + e.getValue() + ": " + problem);
        }
      }
      if (!bad.isEmpty()) {
        unknown.put(file, bad);
      }
      // The job resolves its own keys as it does at run time: a bad value fails here with the option's message.
      JobOptions.parse(new String[] {"--model", "m", "--input", "i", "--output", "o"}, conf::get, k -> null);
    }
    assertThat(unknown).as("keys no one reads, or values their key rejects").isEmpty();
  }

  @Test
  void theCheckCatchesTypos() {
    assertThat(check("spark.executor.memroy", "24g")).contains("not a Spark config");
    assertThat(check("spark.executor.memory", "24 gigs")).contains("does not parse");
    assertThat(check("spark.hadoop.fs.s3a.comitter.name", "magic")).contains("not a Hadoop key");
    assertThat(check("spark.sparkinfer.batch-sise", "auto")).contains("not an option of the job");
    assertThat(check("spark.executor.resource.gpu.amout", "1")).contains("not a Spark config");
    assertThat(check("spark.kubernetes.namepsace", "x")).contains("not a Spark config");
    assertThat(check("spark.kubernetes.namespace", "x")).isNull();
    assertThat(check("spark.yarn.queue", "default")).isNull();
  }

  @Test
  void gpuSlotsCoresAndTheInferenceProfileAgree() {
    for (String file : List.of("gpu-cluster.properties")) {
      SparkConf conf = sparkConf(load(file));
      double executorGpus = conf.getDouble(InferenceStageProfile.EXECUTOR_GPUS, 0);
      double taskGpus = conf.getDouble(InferenceStageProfile.TASK_GPUS, 0);
      int cores = conf.getInt("spark.executor.cores", 1);
      int taskCpus = conf.getInt(InferenceStageProfile.TASK_CPUS, 1);
      assertThat(executorGpus).as("%s: GPUs per executor", file).isGreaterThanOrEqualTo(1);
      // Spark's own reading of the application's resources, as the default resource profile.
      ResourceProfile$.MODULE$.clearDefaultProfile();
      ResourceProfile profile = ResourceProfile$.MODULE$.getOrCreateDefaultProfile(conf);
      try {
        assertThat(profile.taskResourcesJMap().get("gpu").amount()).isEqualTo(taskGpus);
        assertThat(executorGpus / taskGpus).as("%s: GPU slots equal core slots, so neither is wasted", file)
            .isEqualTo((double) cores / taskCpus);
        assertThat(profile.maxTasksPerExecutor(conf)).as("%s: CPU tasks per executor", file)
            .isEqualTo(cores / taskCpus);
      } finally {
        ResourceProfile$.MODULE$.clearDefaultProfile();
      }
      assertThat(conf.getBoolean("spark.dynamicAllocation.enabled", false))
          .as("%s: task resource profiles need dynamic allocation off", file).isFalse();
      Layout layout = Layout.parse(conf.get("spark.sparkinfer.layout", Layout.SINGLE.label()));
      int inference = InferenceStageProfile.taskGpus(JobOptions.AUTO_GPUS, conf, false, layout);
      assertThat(inference).as("%s: the inference stage asks for whole GPUs, at most an executor's", file)
          .isBetween(1, (int) executorGpus);
      assertThat(conf.get("spark.executorEnv.PYTORCH_VERSION")).as("%s: the libtorch the build's DJL JNI takes", file)
          .isEqualTo(pomProperty(TestSupport.repo().resolve("pom.xml"), "pytorch.version"));
      assertThat(conf.get("spark.executorEnv.PYTORCH_FLAVOR")).isEqualTo("cu124");
      assertThat(conf.get("spark.executor.extraJavaOptions")).contains("-Dai.djl.offline=true");
    }
  }

  @Test
  void clusterFilesAddToGpuClusterWithoutUndoingItsGpuSettings() {
    Map<String, String> base = load("gpu-cluster.properties");
    for (String file : List.of("yarn-gpu.properties", "k8s-gpu.properties")) {
      Map<String, String> extra = load(file);
      for (String key : extra.keySet()) {
        assertThat(key.startsWith("spark.task.resource.") || key.equals(InferenceStageProfile.EXECUTOR_GPUS))
            .as("%s sets %s, which gpu-cluster.properties owns", file, key).isFalse();
      }
      SparkConf merged = sparkConf(base).setAll(scala.jdk.javaapi.CollectionConverters.asScala(extra));
      assertThat(ResourceUtils.parseAllResourceRequests(merged, "spark.executor").size())
          .as("%s: Spark reads one executor resource, the GPU", file).isEqualTo(1);
    }
    assertThat(load("k8s-gpu.properties").get("spark.executor.resource.gpu.vendor"))
        .as("Kubernetes schedules GPUs by the device plugin's resource name").isEqualTo("nvidia.com");
  }

  @Test
  void pathsNamedInTheFilesExistInTheRepositoryAndMatchTheBuild() throws IOException {
    for (String file : FILES) {
      for (Map.Entry<String, String> e : load(file).entrySet()) {
        if (e.getValue().startsWith("/opt/sparkinfer/")) {
          Path inRepo = TestSupport.repo().resolve(e.getValue().substring("/opt/sparkinfer/".length()));
          assertThat(inRepo).as("%s: %s names a file of the repository, installed under /opt/sparkinfer", file,
              e.getKey()).exists();
          if (e.getKey().endsWith(".discoveryScript")) {
            assertThat(inRepo).as("%s: Spark runs the discovery script", file).isExecutable();
          }
        }
      }
    }
    String rapids = pomProperty(TestSupport.repo().resolve("jobs/pom.xml"), "rapids.version");
    assertThat(load("gpu-cluster.properties").get("spark.jars"))
        .as("the RAPIDS jar the tests check (RapidsExplainOnlyTest)")
        .endsWith("rapids-4-spark_2.13-" + rapids + ".jar");
  }

  @Test
  void noFileHoldsCredentials() {
    Pattern secret = Pattern.compile("(?i).*(access\\.key|secret\\.key|session\\.token|password|secret).*");
    for (String file : FILES) {
      assertThat(load(file).keySet()).as("%s: credentials come from providers, never from conf/", file)
          .noneMatch(k -> secret.matcher(k).matches());
    }
  }

  @Test
  void s3FileNamesClassesThatExistAndAConsistentCommitter() throws ClassNotFoundException {
    Map<String, String> s3 = load("s3.properties");
    for (String key : List.of("spark.sql.sources.commitProtocolClass", "spark.sql.parquet.output.committer.class",
        "spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a", "spark.hadoop.fs.s3a.impl")) {
      assertThat(s3).containsKey(key);
      Class.forName(s3.get(key)); // spark-hadoop-cloud and hadoop-aws, as a cluster's Spark has them
    }
    assertThat(s3.get("spark.hadoop.fs.s3a.committer.name")).isEqualTo("magic");
    assertThat(s3.get("spark.hadoop.fs.s3a.committer.magic.enabled")).isEqualTo("true");
  }

  @Test
  void localRunsAskForNoGpuAndNeverDownload() {
    Map<String, String> local = load("local.properties");
    assertThat(local.keySet()).noneMatch(k -> RESOURCE_KEY.matcher(k).matches());
    assertThat(local.get("spark.executor.extraJavaOptions")).contains("-Dai.djl.offline=true");
    assertThat(local.get("spark.driver.extraJavaOptions")).contains("-Dai.djl.offline=true");
    assertThat(local.get("spark.driver.host")).isEqualTo("127.0.0.1");
  }

  /** Why a key or value is wrong; null when Spark, Hadoop or the job knows the key and the value parses. */
  static String check(String key, String value) {
    if (key.startsWith(OptionTable.CONF_PREFIX)) {
      return JobOptions.TABLE.options().stream().anyMatch(o -> o.name().equals(key.substring(OptionTable.CONF_PREFIX
          .length()))) ? null : "not an option of the job (spark.sparkinfer.<option>)";
    }
    if (key.startsWith("spark.hadoop.")) {
      String hadoop = key.substring("spark.hadoop.".length());
      return hadoopKeys.contains(hadoop) || hadoop.startsWith("mapreduce.outputcommitter.factory.scheme.") ? null
          : "not a Hadoop key (*-default.xml, S3A's constants)";
    }
    if (key.startsWith("spark.rapids.")) {
      return null; // RapidsExplainOnlyTest, against RAPIDS' own list
    }
    for (String prefix : ENV_PREFIXES) {
      if (key.startsWith(prefix)) {
        return key.substring(prefix.length()).matches("[A-Z_][A-Z0-9_]*") ? null : "not an environment variable name";
      }
    }
    Matcher resource = RESOURCE_KEY.matcher(key);
    if (resource.matches()) {
      if (resource.group(3).equals("amount")) {
        try {
          Double.parseDouble(value);
        } catch (NumberFormatException e) {
          return "does not parse as an amount";
        }
      }
      return null;
    }
    if (READ_BY_NAME.contains(key)) {
      return null;
    }
    ConfigEntry<?> entry = ConfigEntry$.MODULE$.findEntry(key);
    if (entry == null) {
      return "not a Spark config (core, SQL, YARN, Kubernetes)";
    }
    try {
      entry.valueConverter().apply(value);
      return null;
    } catch (RuntimeException e) {
      return "does not parse: " + e.getMessage();
    }
  }

  /** A conf/ file as spark-submit loads a --properties-file (UTF-8 java.util.Properties, values trimmed). */
  static Map<String, String> load(String name) {
    Path file = TestSupport.repo().resolve("conf").resolve(name);
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    Map<String, String> out = new TreeMap<>();
    p.stringPropertyNames().forEach(k -> out.put(k, p.getProperty(k).strip()));
    assertThat(out).as("%s has settings", name).isNotEmpty();
    return out;
  }

  static SparkConf sparkConf(Map<String, String> conf) {
    SparkConf c = new SparkConf(false);
    conf.forEach(c::set);
    return c;
  }

  private static String pomProperty(Path pom, String name) {
    try {
      Matcher m = Pattern.compile("<" + Pattern.quote(name) + ">([^<]+)</").matcher(Files.readString(pom));
      assertThat(m.find()).as("%s in %s", name, pom).isTrue();
      return m.group(1).strip();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
