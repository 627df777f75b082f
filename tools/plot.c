#include "plot.h"
int plot_main(int argc, char **argv) { (void)argc; (void)argv; return 2; }
void plot_usage(FILE *f) { (void)f; }
