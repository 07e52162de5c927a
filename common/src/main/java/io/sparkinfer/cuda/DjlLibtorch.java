package io.sparkinfer.cuda;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.file.Path;

/**
 * Where DJL's PyTorch engine takes libtorch from, asked before the engine loads it. DJL says it only after loading
 * ({@code LibUtils.getLibtorchPath}), too late for {@link CublasOverride}, so this calls the private method DJL's
 * loading starts with ({@code LibUtils.getLibTorch}: {@code PYTORCH_LIBRARY_PATH}, else the native jar's files,
 * extracted into DJL's cache) and reads whether the engine has loaded from its field. Written against DJL 0.33.0's
 * {@code ai.djl.pytorch.jni.LibUtils}; another version that renames them fails here with a message saying so.
 */
final class DjlLibtorch {

  private static final String LIB_UTILS = "ai.djl.pytorch.jni.LibUtils";

  /** A libtorch directory and the version and flavor DJL gave it ({@code 2.5.1}, {@code cu124}). */
  record Found(Path dir, String version, String flavor) {}

  private DjlLibtorch() {}

  /** Whether DJL has loaded libtorch in this JVM. */
  static boolean loaded() {
    try {
      return field(Class.forName(LIB_UTILS), "libTorch").get(null) != null;
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw unsupported(e);
    }
  }

  /** The libtorch DJL would load now, extracted from the native jar first where that is where it comes from. */
  static Found find() {
    try {
      Method getLibTorch = Class.forName(LIB_UTILS).getDeclaredMethod("getLibTorch");
      getLibTorch.setAccessible(true);
      Object libTorch = getLibTorch.invoke(null);
      Class<?> type = libTorch.getClass();
      return new Found((Path) field(type, "dir").get(libTorch), (String) field(type, "version").get(libTorch),
          (String) field(type, "flavor").get(libTorch));
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw unsupported(e);
    }
  }

  private static Field field(Class<?> type, String name) throws NoSuchFieldException {
    Field f = type.getDeclaredField(name);
    f.setAccessible(true);
    return f;
  }

  private static IllegalStateException unsupported(Exception e) {
    return new IllegalStateException("--cublas cannot ask this DJL where its libtorch is (written for DJL 0.33.0's "
        + LIB_UTILS + "): " + e, e);
  }
}
