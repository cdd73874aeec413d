#include "app/app.h"

int main(int argc, char** argv) { return medvault::app::Main(argc, argv); }
