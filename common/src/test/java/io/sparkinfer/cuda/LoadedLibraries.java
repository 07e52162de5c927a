package io.sparkinfer.cuda;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Run in a JVM of its own by {@code LibtorchOverlayTest}: loads the PyTorch engine, multiplies two matrices (so
 * libtorch's OpenMP runtime runs), then prints the path of every shared library the process has mapped, one a line.
 */
public final class LoadedLibraries {

  private LoadedLibraries() {}

  public static void main(String[] args) throws IOException {
    Engine.getEngine("PyTorch");
    try (NDManager manager = NDManager.newBaseManager()) {
      float sum = manager.ones(new Shape(64, 64)).matMul(manager.ones(new Shape(64, 64))).sum().getFloat();
      System.out.println("sum " + sum);
    }
    Files.readAllLines(Path.of("/proc/self/maps")).stream()
        .map(line -> line.substring(line.lastIndexOf(' ') + 1))
        .filter(path -> path.contains(".so"))
        .distinct()
        .forEach(System.out::println);
  }
}
