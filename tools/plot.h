/*
 * plot.h - `ptkit plot`: turns `ptkit bench --json` results into plots
 * with gnuplot (scaling curves by thread count, ratio bars).
 */
#ifndef PTKIT_TOOLS_PLOT_H
#define PTKIT_TOOLS_PLOT_H

#include <stdio.h>

int plot_main(int argc, char **argv);
void plot_usage(FILE *f);

#endif
