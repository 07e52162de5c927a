package io.sparkinfer.cli;

/**
 * One command-line option: its name, the placeholder of its value (null for a flag), its default as shown
 * in the usage text, and what it does. The usage text is generated from these, never written twice.
 *
 * @param name the option without dashes, e.g. {@code max-new-tokens}
 * @param valueName the value's placeholder, e.g. {@code N}; null for a flag
 * @param defaultText the default as the usage shows it, or null
 * @param description one line
 * @param repeatable whether it may be given several times
 */
public record CliOption(String name, String valueName, String defaultText, String description, boolean repeatable) {

  public static CliOption value(String name, String valueName, String defaultText, String description) {
    return new CliOption(name, valueName, defaultText, description, false);
  }

  public static CliOption repeated(String name, String valueName, String description) {
    return new CliOption(name, valueName, null, description, true);
  }

  public static CliOption flag(String name, String description) {
    return new CliOption(name, null, null, description, false);
  }

  public boolean isFlag() {
    return valueName == null;
  }
}
