import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Checks the C library through JNI against cases the Python runtime scored: a tab-separated file with one
 * case a line: lenient (0/1), status, bad field, probability, then one value per field (\N for empty;
 * backslash escapes \t, \n and \\ in text). Exits 1 on any mismatch (probabilities within 1e-6).
 * Usage: java -cp . CheckCases LIBRARY.so CASES.tsv
 */
public final class CheckCases {
    private CheckCases() {}

    static String unescape(String value) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '\\' && i + 1 < value.length()) {
                char next = value.charAt(++i);
                out.append(next == 't' ? '\t' : next == 'n' ? '\n' : next);
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    public static void main(String[] args) throws IOException {
        IntentEdgeModel.load(Path.of(args[0]).toAbsolutePath().toString());
        List<String> lines = Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8);
        int fields = IntentEdgeModel.fieldCount(), failures = 0;
        double worst = 0;
        for (int index = 0; index < lines.size(); index++) {
            String[] parts = lines.get(index).split("\t", -1);
            double[] numbers = new double[fields];
            String[] texts = new String[fields];
            for (int field = 0; field < fields; field++) {
                String value = parts[4 + field];
                boolean empty = value.equals("\\N");
                if (IntentEdgeModel.fieldKind(field) == 0) {
                    numbers[field] = empty ? Double.NaN : Double.parseDouble(value);
                } else {
                    texts[field] = empty ? null : unescape(value);
                }
            }
            double[] out = new double[2];
            int status = IntentEdgeModel.predictValues(numbers, texts, parts[0].equals("1"), out);
            int expectedStatus = Integer.parseInt(parts[1]);
            if (status != expectedStatus || (status != IntentEdgeModel.OK && (int) out[1] != Integer.parseInt(parts[2]))) {
                failures++;
                System.err.printf("case %d: status %d field %d, expected %s field %s%n", index, status, (int) out[1],
                                  parts[1], parts[2]);
            } else if (status == IntentEdgeModel.OK) {
                double difference = Math.abs(out[0] - Double.parseDouble(parts[3]));
                worst = Math.max(worst, difference);
                if (!(difference <= 1e-6)) {
                    failures++;
                    System.err.printf("case %d: probability %.9g, expected %s%n", index, out[0], parts[3]);
                }
            }
        }
        System.out.printf("cases %d, failures %d, max |dp| %.3g%n", lines.size(), failures, worst);
        System.exit(failures == 0 ? 0 : 1);
    }
}
